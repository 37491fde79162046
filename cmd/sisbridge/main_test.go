package main

import (
	"runtime"
	"strings"
	"testing"
)

// TestVersionLineNamesTheBuild: the version line says sisbridge, a version
// and the Go version, never "dev".
func TestVersionLineNamesTheBuild(t *testing.T) {
	line := versionLine()
	if !strings.HasPrefix(line, "sisbridge ") || !strings.Contains(line, runtime.Version()) || strings.Contains(line, "dev,") {
		t.Fatalf("version line %q", line)
	}
}
