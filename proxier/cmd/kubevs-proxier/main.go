// Command kubevs-proxier is the node daemon that programs Kubernetes Services into IPVS.
// All logic lives in package daemon; this file parses flags, sets up logging and signals.
// `kubevs-proxier status [flags]` (also reached as `kubevs status`) runs package status.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/daemon"
	"github.com/kubevs/kubevs/proxier/status"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == status.Command {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		code := status.Main(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	fs := flag.NewFlagSet("kubevs-proxier", flag.ExitOnError)
	klog.InitFlags(fs)
	configPath := fs.String("config", "", "path of the ProxierConfiguration file (kubevs.io/v1alpha1); empty: defaults")
	kubeconfig := fs.String("kubeconfig", "", "path of a kubeconfig file; overrides the configuration's kubeconfig")
	hostname := fs.String("hostname-override", "", "name of this Node; overrides the configuration's nodeName")
	fs.StringVar(hostname, "node-name", "", "alias of --hostname-override")
	cleanup := fs.Bool("cleanup", false, "remove every kernel object kubevs owns, then exit")
	_ = fs.Parse(os.Args[1:])

	if err := run(*configPath, *kubeconfig, *hostname, *cleanup); err != nil {
		klog.ErrorS(err, "kubevs-proxier failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(configPath, kubeconfig, hostname string, cleanup bool) error {
	cfg, err := config.Bootstrap(configPath, kubeconfig, hostname)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())
	if cleanup {
		return daemon.Cleanup(ctx, cfg, nil)
	}
	d, err := daemon.New(daemon.Options{Config: cfg})
	if err != nil {
		return err
	}
	return d.Run(ctx)
}
