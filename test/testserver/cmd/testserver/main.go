// Command testserver is the test bed's pod workload; see package testserver.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/test/testserver"
)

func main() {
	var cfg testserver.Config
	host, _ := os.Hostname()
	flag.StringVar(&cfg.Hostname, "hostname", host, "name answered by /hostname (the pod's name)")
	flag.IntVar(&cfg.HTTPPort, "http-port", 8080, "HTTP port (0 disables)")
	flag.IntVar(&cfg.TCPPort, "tcp-port", 9000, "TCP echo port (0 disables)")
	flag.IntVar(&cfg.UDPPort, "udp-port", 9000, "UDP echo port (0 disables)")
	klog.InitFlags(nil)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := testserver.Listen(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s http=%d tcp=%d udp=%d\n", testserver.ReadyLine, cfg.HTTPPort, cfg.TCPPort, cfg.UDPPort)
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
