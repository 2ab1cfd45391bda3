package bench

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/test/bed"
)

// Options are kubevs-bench-e2e's flags.
type Options struct {
	Config
	// ControlPlaneBin is a PATH-style list of dirs holding etcd, kube-apiserver,
	// kube-controller-manager and kube-proxy.
	ControlPlaneBin string
	// KubevsBin is the kubevs-proxier binary.
	KubevsBin string
	// Run lists the proxiers to run, in order ("kube-proxy,kubevs").
	Run string
	// Out is the results dir.
	Out string
	// HostKernel and HostNProc describe the host, which the guest cannot see.
	HostKernel string
	HostNProc  int
	// ServeAPI, when set, makes this run the host's half instead of the benchmark: the
	// control plane alone, served to the guest over qemu's user-mode network, with the
	// guest's admin kubeconfig written to this path (ServeControlPlane).
	ServeAPI string
	// Kubeconfig, when set, is the admin kubeconfig of a control plane the host serves:
	// the guest starts none of its own.
	Kubeconfig string
	// Preload makes the host's half write the Services and slices before it serves
	// (Preload), and the guest's adopt them (Config.Preloaded).
	Preload bool
	// PreloadCache is the host's cache of preloaded clusters (Preload.Cache); empty: none.
	PreloadCache string
}

// AddFlags registers the options.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.Services, "services", 1000, "Services (N)")
	fs.IntVar(&o.Endpoints, "endpoints", 10, "endpoints per Service")
	fs.IntVar(&o.Changes, "changes", 20, "single one-endpoint changes (K)")
	fs.IntVar(&o.Burst, "burst", 1000, "changes in the burst")
	fs.DurationVar(&o.Idle, "idle", time.Minute, "idle period for idle CPU")
	fs.DurationVar(&o.ChangeTimeout, "change-timeout", 2*time.Minute, "bound of one change's wait")
	fs.DurationVar(&o.ChangeBudget, "change-budget", 10*time.Minute, "bound of the series of single changes")
	fs.DurationVar(&o.ColdTimeout, "cold-timeout", 30*time.Minute, "bound of the cold sync")
	fs.DurationVar(&o.BurstTimeout, "burst-timeout", 15*time.Minute, "bound of the burst's convergence")
	fs.IntVar(&o.Writers, "writers", 4, "parallel API writers of the changes and the burst (more overload the emulated API server)")
	fs.IntVar(&o.SetupWriters, "setup-writers", 0, "parallel API writers of the objects written before the proxiers start (0: -writers; the host's native API server takes more)")
	fs.Uint64Var(&o.Seed, "seed", 12, "seed of the changed Services")
	fs.BoolVar(&o.Floor, "floor", true, "measure the raw netlink floor after the proxiers")
	fs.DurationVar(&o.TrashSettle, "trash-settle", 3*time.Minute, "wait after each proxier's virtual servers are gone, before the next proxier or the floor: the kernel's trash of deleted real servers slows every add until it empties (0: no wait)")
	fs.BoolVar(&o.Sweep, "sweep", true, "after each proxier's own cleanup, clear netfilter, ipsets and kube-ipvs0 (the guest is the benchmark's)")
	fs.DurationVar(&o.Profile, "profile", 0, "with a duration: run kubevs with --profiling and save each proxier's CPU profile of its first DURATION (the cold sync) and of the idle period, and its heap profile after the idle period, into the log dir")
	fs.StringVar(&o.LogDir, "log-dir", "", "component logs (default OUT/logs-N)")
	fs.StringVar(&o.ControlPlaneBin, "control-plane-bin", "", "dirs of etcd, kube-apiserver, kube-controller-manager, kube-proxy (PATH-style)")
	fs.StringVar(&o.KubevsBin, "kubevs-proxier", "", "kubevs-proxier binary")
	fs.StringVar(&o.Run, "run", "kube-proxy,kubevs", "proxiers to run, in order")
	fs.StringVar(&o.Out, "out", "bin/bench-e2e", "results dir")
	fs.StringVar(&o.HostKernel, "host-kernel", "", "host kernel release (uname -r on the host)")
	fs.IntVar(&o.HostNProc, "host-nproc", 0, "host CPUs (nproc on the host)")
	fs.StringVar(&o.ServeAPI, "serve-api", "", "on the host: serve the control plane to the guest (qemu user-mode network) and write the guest's kubeconfig to this path, until signalled")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "in the guest: the kubeconfig -serve-api wrote (default: the guest runs its own control plane)")
	fs.BoolVar(&o.Preload, "preload", false, "with -serve-api: write the -services and their slices natively before serving; with -kubeconfig: adopt them instead of writing")
	fs.StringVar(&o.PreloadCache, "preload-cache", "", "with -serve-api -preload: keep the written cluster's etcd data in this dir and start from a copy of it when it is there")
}

// benchClient is the benchmark's own client: no client-side rate limit, protobuf on the
// wire (cheaper for the emulated API server than JSON).
func benchClient(c *rest.Config) (kubernetes.Interface, error) {
	rc := rest.CopyConfig(c)
	rc.QPS, rc.Burst = -1, 0
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	return client, nil
}

// Main starts the bed, runs the benchmark and writes the report; it returns the markdown
// (as much as was measured, also on error).
func Main(ctx context.Context, o Options) (string, error) {
	if o.Services <= 0 || o.Endpoints <= 0 || o.Changes < 0 || o.Burst < 0 || o.Writers <= 0 || o.SetupWriters < 0 {
		return "", fmt.Errorf("invalid sizes: services %d, endpoints %d, changes %d, burst %d, writers %d (services, endpoints, writers > 0)",
			o.Services, o.Endpoints, o.Changes, o.Burst, o.Writers)
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join(o.Out, fmt.Sprintf("logs-N%d", o.Services))
	}
	dirs := filepath.SplitList(o.ControlPlaneBin)
	if o.Preload && o.ServeAPI == "" && o.Kubeconfig == "" {
		return "", errors.New("-preload needs -serve-api (the host's half) or -kubeconfig (the guest's)")
	}
	if o.ServeAPI != "" {
		var p Preload
		if o.Preload {
			p = Preload{Services: o.Services, Endpoints: o.Endpoints, Writers: cmp.Or(o.SetupWriters, o.Writers), Cache: o.PreloadCache}
		}
		return "", ServeControlPlane(ctx, dirs, o.LogDir, o.ServeAPI, p)
	}
	o.Preloaded = o.Preload
	b, err := bed.Start(ctx, bed.Config{
		ControlPlaneBin: dirs, LogDir: o.LogDir, StartTimeout: 10 * time.Minute,
		Network: bed.NetworkConfig{IPv4Only: true}, Kubeconfig: o.Kubeconfig,
	})
	if err != nil {
		return "", fmt.Errorf("start bed: %w", err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			klog.FromContext(ctx).Error(err, "Close bed")
		}
	}()
	klog.FromContext(ctx).Info("Bed ready", "timings", b.Timings())
	for _, name := range strings.Split(o.Run, ",") {
		switch strings.TrimSpace(name) {
		case "kube-proxy":
			bin, err := findIn(dirs, "kube-proxy")
			if err != nil {
				return "", err
			}
			p, err := KubeProxy(bin, o.LogDir, b)
			if err != nil {
				return "", err
			}
			o.Proxiers = append(o.Proxiers, p)
		case "kubevs":
			if o.KubevsBin == "" {
				return "", errors.New("--kubevs-proxier is required to run kubevs")
			}
			o.Proxiers = append(o.Proxiers, Kubevs(o.KubevsBin, b, o.Profile > 0))
		default:
			return "", fmt.Errorf("--run: unknown proxier %q (kube-proxy, kubevs)", name)
		}
	}
	client, err := benchClient(b.RESTConfig)
	if err != nil {
		return "", err
	}
	k, err := ipvs.New()
	if err != nil {
		return "", err
	}
	if c, ok := k.(io.Closer); ok {
		defer c.Close()
	}
	rep := &Report{
		Date: time.Now().UTC().Format(time.RFC3339),
		Machine: Machine{
			HostNProc: o.HostNProc, HostKernel: o.HostKernel,
			GuestNProc: runtime.NumCPU(), GuestKernel: unameRelease(), Accel: "QEMU TCG",
			APIServer: apiServerPlace(o.Kubeconfig),
		},
		Services: o.Services, Endpoints: o.Endpoints, Changes: o.Changes, Burst: o.Burst, IdleSec: o.Idle.Seconds(),
		Preloaded: o.Preloaded,
	}
	o.Progress = func(r *Report) {
		if _, err := r.WriteFiles(o.Out); err != nil {
			klog.FromContext(ctx).Error(err, "Write the report so far")
		}
	}
	runErr := Run(ctx, o.Config, client, k, rep)
	md, err := rep.WriteFiles(o.Out)
	return md, errors.Join(runErr, err)
}

func findIn(dirs []string, name string) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s in %q: not found (test/scripts/control-plane.sh builds it)", name, dirs)
}

func unameRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
