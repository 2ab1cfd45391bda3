// Command kubevs-install installs kubevs on a node: binaries into the CNI bin directory, the
// conflist into the CNI configuration directory, a kubeconfig for the proxier; by default it
// then keeps them in place until stopped. See package install.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/install"
)

func main() {
	var cmd install.Command
	cmd.AddFlags(flag.CommandLine)
	klog.InitFlags(flag.CommandLine)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "kubevs-install: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background().WithName("kubevs-install"))
	err := cmd.Run(ctx)
	klog.Flush()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubevs-install: %v\n", err)
		os.Exit(1)
	}
}
