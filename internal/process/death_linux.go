package process

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill cmd when the process that started it
// dies, even by kill -9: a test killed mid-run leaves no server behind.
// (The kernel ties the signal to the thread that started cmd; Go's
// runtime ends a thread only under a goroutine that locked it and
// returned, which nothing starting a Process does.)
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
