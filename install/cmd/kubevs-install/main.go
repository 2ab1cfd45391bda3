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
	var (
		o         install.Options
		once      = flag.Bool("once", false, "install once and exit instead of keeping everything in place")
		uninstall = flag.Bool("uninstall", false, "remove what kubevs-install added and exit")
		probe     = flag.Bool("probe", false, "exit 0 if the installation is complete (a startup probe)")
	)
	o.AddFlags(flag.CommandLine)
	klog.InitFlags(flag.CommandLine)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "kubevs-install: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background().WithName("kubevs-install"))

	in, err := install.New(o)
	if err == nil {
		switch {
		case *probe:
			err = in.Installed()
		case *uninstall:
			err = in.Uninstall(ctx)
		case *once:
			err = in.Install(ctx)
		default:
			err = in.Run(ctx)
		}
	}
	klog.Flush()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubevs-install: %v\n", err)
		os.Exit(1)
	}
}
