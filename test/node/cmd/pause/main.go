// Command pause is the program of the real node's sandbox image (test/node builds it as
// registry.k8s.io/pause:3.10.2, the name containerd 2.3 and kubeadm 1.36 use): it holds the
// pod's namespaces, reaps the children it inherits as the pod's PID 1, and exits 0 on SIGINT
// or SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
