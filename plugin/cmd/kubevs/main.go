// Command kubevs is the kubevs chained CNI plugin. Run by a container runtime it speaks CNI
// (ADD, DEL, CHECK, GC, STATUS, VERSION); run as `kubevs supervise <proxier> [flags]` it is the
// supervisor the plugin launches to keep kubevs-proxier running; run as `kubevs status
// [flags]` it prints the node's IPVS table by Service and its drift from the API (exit 0 no
// drift, 1 drift, 2 error; see package proxier/status).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"

	"github.com/kubevs/kubevs/plugin"
	"github.com/kubevs/kubevs/proxier/status"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == plugin.SuperviseCommand {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(os.Stderr)))
		ctx = klog.NewContext(ctx, logger.WithName("kubevs-supervisor"))
		if err := plugin.Supervise(ctx, os.Args[2:], plugin.DefaultBackoff, plugin.InheritedLock()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == status.Command {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		code := status.Main(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	skel.PluginMainFuncs(plugin.New().Funcs(), plugin.VersionInfo(), "kubevs: Kubernetes Services on IPVS (chained CNI plugin)")
}
