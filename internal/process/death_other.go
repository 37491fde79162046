//go:build !linux

package process

import "os/exec"

// dieWithParent does nothing where the kernel offers no parent-death
// signal: children of a killed parent go on until stopped.
func dieWithParent(*exec.Cmd) {}
