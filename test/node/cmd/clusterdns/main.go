// Command clusterdns is the real-node beds' cluster DNS (package test/node/clusterdns): it
// answers for the cluster domain from the API server's Services and EndpointSlices.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/test/node/clusterdns"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server")
	listen := flag.String("listen", ":53", "UDP and TCP address to answer on")
	domain := flag.String("domain", "cluster.local", "the cluster domain")
	klog.InitFlags(nil)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := klog.FromContext(ctx)
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		logger.Error(err, "Cannot read the kubeconfig", "path", *kubeconfig)
		os.Exit(1)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		logger.Error(err, "Cannot make a client")
		os.Exit(1)
	}
	pc, l, err := clusterdns.Listen(*listen)
	if err != nil {
		logger.Error(err, "Cannot listen")
		os.Exit(1)
	}
	if err := clusterdns.Serve(ctx, client, *domain, pc, l); err != nil {
		logger.Error(err, "Cluster DNS stopped")
		os.Exit(1)
	}
}
