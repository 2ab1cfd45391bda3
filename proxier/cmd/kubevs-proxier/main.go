// Command kubevs-proxier is the node daemon that programs Kubernetes Services into IPVS.
// All logic lives in package daemon; this file parses flags, sets up logging and signals.
// `kubevs-proxier status [flags]` (also reached as `kubevs status`) runs package status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/config/kubeproxy"
	"github.com/kubevs/kubevs/proxier/daemon"
	"github.com/kubevs/kubevs/proxier/nodeapi"
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
	var o kubeproxy.Options
	fs.StringVar(&o.ConfigPath, "config", "", "path of a ProxierConfiguration (kubevs.io/v1alpha1) or KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) file; empty: defaults")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "path of a kubeconfig file; overrides a ProxierConfiguration's kubeconfig (ignored with a KubeProxyConfiguration, as by kube-proxy)")
	fs.StringVar(&o.HostnameOverride, "hostname-override", "", "name of this Node; overrides the configuration's nodeName")
	fs.StringVar(&o.HostnameOverride, "node-name", "", "alias of --hostname-override")
	cleanup := fs.Bool("cleanup", false, "remove every kernel object kubevs owns, then exit")
	o.Flags.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])
	o.Flags.Parsed(fs)
	if o.Flags.Version {
		fmt.Println(kubeproxy.Version())
		return
	}

	if err := run(o, *cleanup); err != nil {
		if errors.Is(err, daemon.ErrYielded) { // its supervisor stops too (proxier/nodeapi/handover.go)
			klog.InfoS("Exiting: another kubevs-proxier serves the node API socket", "reason", err)
			klog.Flush()
			os.Exit(nodeapi.ExitYielded)
		}
		klog.ErrorS(err, "kubevs-proxier failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(o kubeproxy.Options, cleanup bool) error {
	cfg, report, err := kubeproxy.Bootstrap(o)
	report.Log(klog.Background())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())
	if cleanup {
		return daemon.Cleanup(ctx, cfg, nil)
	}
	d, err := daemon.New(daemon.Options{Config: cfg, Supervised: os.Getenv(nodeapi.SupervisedEnv) == "1"})
	if err != nil {
		return err
	}
	return d.Run(ctx)
}
