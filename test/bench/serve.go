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
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/test/bed"
	"github.com/kubevs/kubevs/test/vm"
)

// Preload is what the host's half writes before the guest starts: Services of Endpoints
// each, with Writers parallel writers (none when Services is 0). Written from the guest's
// emulated client, 50,000 Services took over 40 minutes (16 writes a second past 20,000);
// the guest then adopts them (Config.Preloaded). With a Cache dir, the etcd data of the
// written cluster is kept there and later runs start from a copy of it: kube-apiserver
// v1.36 writes 50,000 Services in about an hour (each ClusterIP allocation lists every
// IPAddress), which is then paid once.
type Preload struct {
	Services, Endpoints, Writers int
	Cache                        string
}

// preloadFormat names the objects CreateCluster writes: bump it when they change, so that
// no run adopts a cluster cached by an older benchmark (AdoptCluster would fail it anyway,
// naming the slice that differs).
const preloadFormat = 1

// cacheDir is where p's cluster is kept: one dir per size, format and control plane.
func (p Preload) cacheDir(dirs []string) string {
	h := sha256.Sum256([]byte(strings.Join(dirs, string(filepath.ListSeparator))))
	return filepath.Join(p.Cache, fmt.Sprintf("N%d-E%d-f%d-%x", p.Services, p.Endpoints, preloadFormat, h[:4]))
}

// seed returns the etcd data dir of p's cluster in the cache, writing it first when the
// cache lacks it: a control plane of its own writes the objects and stops, and its etcd data
// becomes the cache's. "" when p keeps no cache.
func (p Preload) seed(ctx context.Context, cfg bed.Config) (string, error) {
	if p.Cache == "" || p.Services == 0 {
		return "", nil
	}
	dir := p.cacheDir(cfg.ControlPlaneBin)
	data, done := filepath.Join(dir, "etcd"), filepath.Join(dir, "complete")
	logger := klog.FromContext(ctx)
	if _, err := os.Stat(done); err == nil {
		logger.Info("Preloaded cluster found in the cache", "dir", dir)
		return data, nil
	}
	if err := os.RemoveAll(dir); err != nil { // a fill that did not finish
		return "", fmt.Errorf("preload cache: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("preload cache: %w", err)
	}
	cfg.Dir, cfg.LogDir = filepath.Join(dir, "bed"), filepath.Join(cfg.LogDir, "preload")
	if err := p.write(ctx, cfg); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(cfg.Dir, "etcd"), data); err != nil {
		return "", fmt.Errorf("preload cache: %w", err)
	}
	if err := os.RemoveAll(cfg.Dir); err != nil {
		return "", fmt.Errorf("preload cache: %w", err)
	}
	if err := os.WriteFile(done, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("preload cache: %w", err)
	}
	logger.Info("Preloaded cluster kept in the cache", "dir", dir)
	return data, nil
}

// write starts a control plane of cfg, writes p's objects and stops it (etcd's data is
// then complete on disk).
func (p Preload) write(ctx context.Context, cfg bed.Config) (err error) {
	b, err := bed.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start control plane for the preload: %w", err)
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	return p.create(ctx, b)
}

// create writes p's objects through b's API server.
func (p Preload) create(ctx context.Context, b *bed.Bed) error {
	client, err := benchClient(b.RESTConfig)
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := CreateCluster(ctx, client, p.Services, p.Endpoints, p.Writers); err != nil {
		return fmt.Errorf("preload: %w", err)
	}
	klog.FromContext(ctx).Info("Preloaded the cluster", "services", p.Services, "endpoints", p.Services*p.Endpoints, "writers", p.Writers, "elapsed", time.Since(start))
	return nil
}

// ServeControlPlane starts the bed's control plane alone (etcd, kube-apiserver and the
// EndpointSlice controllers, as in the guest), with a serving certificate for
// vm.UserNetHost, writes the objects of preload, then an admin kubeconfig for
// https://UserNetHost:6443 to kubeconfig (written atomically: the script waits for the
// file), and serves until ctx ends.
func ServeControlPlane(ctx context.Context, dirs []string, logDir, kubeconfig string, preload Preload) (err error) {
	cfg := bed.Config{
		ControlPlaneBin: dirs, LogDir: logDir, StartTimeout: 10 * time.Minute,
		Network: bed.NetworkConfig{IPv4Only: true}, ControlPlaneOnly: true, NoControllerManager: true,
		APIServerIPs: []net.IP{net.ParseIP(vm.UserNetHost)},
	}
	if cfg.EtcdSeed, err = preload.seed(ctx, cfg); err != nil {
		return err
	}
	b, err := bed.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	if preload.Services > 0 && cfg.EtcdSeed == "" {
		if err := preload.create(ctx, b); err != nil {
			return err
		}
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
