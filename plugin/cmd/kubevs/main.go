// Command kubevs is the kubevs chained CNI plugin. Run by a container runtime it speaks CNI
// (ADD, DEL, CHECK, GC, STATUS, VERSION); run as `kubevs supervise <proxier> [flags]` it is the
// supervisor the plugin launches to keep kubevs-proxier running; run as `kubevs status
// [flags]` it executes `kubevs-proxier status [flags]` from its own directory (see package
// proxier/status).
//
// The binary links no Kubernetes API machinery: a runtime execs it for every pod, and the
// package initialisation of k8s.io/apimachinery and client-go alone costs milliseconds per
// exec. TestNoKubernetesAPIMachinery keeps it that way.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"

	"github.com/kubevs/kubevs/plugin"
)

// cniMemoryLimit is the heap size past which the collector runs during a CNI verb.
const cniMemoryLimit = 64 << 20

func main() {
	if len(os.Args) > 1 && os.Args[1] == plugin.SuperviseCommand {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(os.Stderr)))
		ctx = klog.NewContext(ctx, logger.WithName("kubevs-supervisor"))
		plugin.Confine(ctx)
		if err := plugin.Supervise(ctx, os.Args[2:], plugin.DefaultBackoff, plugin.InheritedLock()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == plugin.StatusCommand {
		// Only returns on failure; exit 2 is status's "could not tell".
		fmt.Fprintln(os.Stderr, plugin.ExecStatus(os.Args[2:]))
		os.Exit(2)
	}
	// A CNI verb lives a few milliseconds and allocates a few MiB: skip the garbage collector
	// (its start-up and stack scans showed in profiles of ADD), keeping a limit as a backstop.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(cniMemoryLimit)
	skel.PluginMainFuncs(plugin.New().Funcs(), plugin.VersionInfo(), "kubevs: Kubernetes Services on IPVS (chained CNI plugin)")
}
