// Command kubevs-bench-e2e runs the side-by-side benchmark of package bench inside the test
// VM (test/scripts/bench-e2e.sh boots it): it starts the bed's control plane, runs the
// proxiers and writes the report into --out.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/test/bench"
)

func main() {
	fs := flag.NewFlagSet("kubevs-bench-e2e", flag.ExitOnError)
	klog.InitFlags(fs)
	var o bench.Options
	o.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	ctx = klog.NewContext(ctx, klog.Background())
	md, err := bench.Main(ctx, o)
	stop()
	fmt.Print(md)
	if err != nil {
		klog.ErrorS(err, "kubevs-bench-e2e failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}
