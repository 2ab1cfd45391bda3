package plugin

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// StatusCommand is the first argument that makes the kubevs binary run `kubevs status`.
const StatusCommand = "status"

// ExecStatus replaces the running process with `kubevs-proxier status args...`, the
// kubevs-proxier found beside the running kubevs binary (symlinks resolved), so that the
// report, its exit code and signals are the proxier binary's own. It returns only on failure.
func ExecStatus(args []string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("kubevs status: locate the kubevs binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	proxier := filepath.Join(filepath.Dir(self), DefaultProxierBinary)
	if !isExecutable(proxier) {
		return fmt.Errorf("kubevs status: %s: not an executable file (kubevs-install puts it beside kubevs)", proxier)
	}
	argv := append([]string{DefaultProxierBinary, StatusCommand}, args...)
	if err := syscall.Exec(proxier, argv, os.Environ()); err != nil {
		return fmt.Errorf("kubevs status: exec %s: %w", proxier, err)
	}
	return nil
}
