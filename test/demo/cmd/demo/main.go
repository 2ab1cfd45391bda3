// Command demo runs the kubevs demo (package test/demo) inside the test VM: the real control
// plane, kubevs installed by kubevs-install, three pods behind a Service, and curl through
// its ClusterIP, its NodePort and back to a pod itself. test/scripts/demo.sh (make demo)
// builds everything on the host and runs this in the guest. Exit status 1 if a step fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/test/demo"
)

func main() {
	root := flag.String("repo", ".", "the kubevs repository (for install/manifests/kubevs.yaml)")
	cfg := demo.ConfigFromEnv(os.Getenv, ".")
	flag.StringVar(&cfg.ToolsDir, "tools", cfg.ToolsDir, "dir of the CNI reference plugins and testserver (default $KUBEVS_E2E_BIN)")
	flag.StringVar(&cfg.KubevsDir, "kubevs-bin", cfg.KubevsDir, "dir of the kubevs binaries (default $KUBEVS_BIN)")
	flag.StringVar(&cfg.LogDir, "log-dir", cfg.LogDir, "keep logs here (default $KUBEVS_DEMO_LOGDIR, else a temporary dir kept on failure)")
	flag.DurationVar(&cfg.StepTimeout, "step-timeout", 3*time.Minute, "bound of each check")
	klog.InitFlags(nil)
	flag.Parse()
	cfg.Manifest = filepath.Join(*root, "install", "manifests", "kubevs.yaml")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := demo.Run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		// Run has printed the failure on stdout, unless it refused to start.
		fmt.Fprintf(os.Stderr, "demo: failed: %v\n", err)
		os.Exit(1)
	}
}
