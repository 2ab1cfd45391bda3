package bench

// The host's half of a run whose API server is native (test/scripts/bench-e2e.sh, BENCH_API
// host). Emulated, etcd and kube-apiserver took most of a large run: writing 20,000 objects
// took 19 minutes of the 10,000-Service run, and 50,000 Services would take hours. Served by
// the host, they run at native speed, and the guest runs only what is measured: the
// proxiers, the kernel and the benchmark's client. The guest reaches the host over qemu's
// user-mode network, at vm.UserNetHost, which is the loopback of the network namespace
// bench-e2e.sh gives the control plane and qemu alone: nothing listens where other machines
// see it.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/test/bed"
	"github.com/kubevs/kubevs/test/vm"
)

// Preload is what the host's half writes before the guest starts: Services of Endpoints
// each, with Writers parallel writers (none when Services is 0). Written from the guest's
// emulated client, 50,000 Services took over 40 minutes (16 writes a second past 20,000);
// the guest then adopts them (Config.Preloaded).
type Preload struct {
	Services, Endpoints, Writers int
}

// ServeControlPlane starts the bed's control plane alone (etcd, kube-apiserver and the
// EndpointSlice controllers, as in the guest), with a serving certificate for
// vm.UserNetHost, writes the objects of preload, then an admin kubeconfig for
// https://UserNetHost:6443 to kubeconfig (written atomically: the script waits for the
// file), and serves until ctx ends.
func ServeControlPlane(ctx context.Context, dirs []string, logDir, kubeconfig string, preload Preload) (err error) {
	b, err := bed.Start(ctx, bed.Config{
		ControlPlaneBin: dirs, LogDir: logDir, StartTimeout: 10 * time.Minute,
		Network: bed.NetworkConfig{IPv4Only: true}, ControlPlaneOnly: true,
		APIServerIPs: []net.IP{net.ParseIP(vm.UserNetHost)},
	})
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	if preload.Services > 0 {
		client, err := benchClient(b.RESTConfig)
		if err != nil {
			return err
		}
		start := time.Now()
		if _, err := CreateCluster(ctx, client, preload.Services, preload.Endpoints, preload.Writers); err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		klog.FromContext(ctx).Info("Preloaded the cluster", "services", preload.Services, "endpoints", preload.Services*preload.Endpoints, "writers", preload.Writers, "elapsed", time.Since(start))
	}
	if err := b.WriteRemoteKubeconfig(kubeconfig, "https://"+net.JoinHostPort(vm.UserNetHost, "6443")); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Control plane served to the guest", "kubeconfig", kubeconfig, "timings", b.Timings())
	<-ctx.Done()
	return nil
}

// apiServerPlace describes where the run's API server is, for the report.
func apiServerPlace(kubeconfig string) string {
	if kubeconfig != "" {
		return "on the host, native (qemu user-mode network)"
	}
	return "in the guest, emulated"
}
