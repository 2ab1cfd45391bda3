// Command kubevs-vm boots the kubevs test VM (a Debian kernel with IPVS under QEMU, over
// this machine's own root) and runs one command in it. See package
// github.com/kubevs/kubevs/test/vm and `kubevs-vm` without arguments for usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/test/vm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	logger := klog.NewKlogr().WithName("kubevs-vm")
	ctx = klog.NewContext(ctx, logger)
	code := vm.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	klog.Flush()
	os.Exit(code)
}
