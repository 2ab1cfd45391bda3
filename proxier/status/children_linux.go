package status

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// killChildren kills (SIGKILL) the processes this process started that still run: after a
// read timed out, the tool behind it (an iptables-save that does not answer) would outlive
// `kubevs status` and keep its CPU, node after node, run after run. The adapters start
// tools only while a read runs, so a child still running at the end belongs to an
// abandoned read. It returns how many it signalled.
func killChildren() int {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	n := 0
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
				n++
			}
		}
	}
	return n
}
