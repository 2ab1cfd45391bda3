// Package daemon wires kubevs-proxier together: the API tracker, the pure desired state,
// the reconciler over the kernel adapters, the bounded-frequency runner, the node API the
// CNI plugin talks to, and the metrics and health servers.
//
// Lifecycle: serve the node API and health at once (not ready); wait for the informers;
// start the reconciler (it adopts what the kernel holds, flushing nothing); a first full
// sync; then partial syncs of the changed Services, a full resync every syncPeriod and after
// any failure. On SIGTERM (ctx done) it stops and leaves the kernel as it is, so a restart
// does not disrupt traffic. Cleanup (--cleanup) removes what kubevs owns.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/daemon/svchealth"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/tick"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/metrics"
	"github.com/kubevs/kubevs/proxier/nodeapi"
	"github.com/kubevs/kubevs/proxier/reconcile"
	"github.com/kubevs/kubevs/proxier/runner"
	"github.com/kubevs/kubevs/proxier/tracker"
)

// drainInterval is how often draining real servers are checked.
const drainInterval = time.Second

// Options are what a Daemon is built from. Only Config is required.
type Options struct {
	// Config is the validated configuration.
	Config *config.Configuration
	// Client talks to the API server. Nil: built from Config.Kubeconfig (or in-cluster).
	Client kubernetes.Interface
	// Kernel holds the kernel adapters. Nil: the Linux implementations.
	Kernel *reconcile.Kernel
	// Clock is the time source of the runner and of the health checks. Nil: real time.
	Clock clock.WithTicker
	// Metrics receives the metrics. Nil: a new registry.
	Metrics *metrics.Metrics
	// HostAddresses lists the node's addresses for the nodePortAddresses CIDRs; it is called
	// before every full sync when nodePortAddresses is set. Nil: derive.HostAddresses.
	HostAddresses func() ([]netip.Addr, error)
	// AddressChanges streams the host's address changes, watched when nodePortAddresses is
	// set. Nil: NetlinkAddressChanges.
	AddressChanges AddressChanges
	// NetnsGone reports whether a registration's network namespace path is gone, for the
	// registration GC (reggc.go). Nil: the path does not exist.
	NetnsGone func(path string) bool
	// LinkChanges reports the dummy link deleted or down. Nil: NetlinkLinkChanges.
	LinkChanges LinkChanges
	// APIServerHost is the API server's URL as the kubeconfig names it (rest.Config.Host),
	// reserved by the guard rails. Empty: read from Config.Kubeconfig when Client is nil.
	APIServerHost string
	// Recorder reports refusals as Events on the Services. Nil: core/v1 Events written
	// through Client.
	Recorder record.EventRecorder

	// Supervised: the CNI plugin's supervisor started this proxier (nodeapi.SupervisedEnv).
	// It then yields the node API socket to any other proxier (handover.go).
	Supervised bool

	// retryBase is the first delay before a failed sync is retried (tests). Zero: the
	// runner's default.
	retryBase time.Duration
}

// Daemon is one running proxier.
type Daemon struct {
	cfg     *config.Configuration
	client  kubernetes.Interface
	kernel  reconcile.Kernel
	clock   clock.WithTicker
	metrics *metrics.Metrics
	health  *metrics.Health
	// hostAddrs lists the host's addresses (Options.HostAddresses).
	hostAddrs func() ([]netip.Addr, error)
	// addrChanges is Options.AddressChanges; addrsChanged asks the next sync to be full.
	addrChanges  AddressChanges
	addrsChanged atomic.Bool
	netnsGone    func(string) bool
	tracker      *tracker.Tracker
	runner       *runner.Runner
	store        *nodeapi.Store
	// owners maps virtual servers to Services for the per-Service IPVS counters.
	owners *vsOwners
	// svcHealth serves the Services' healthCheckNodePorts.
	svcHealth *svchealth.Servers
	// apiHost is Options.APIServerHost; recorder writes the refusal Events, through
	// broadcaster when the daemon made it (nil otherwise).
	apiHost     string
	recorder    record.EventRecorder
	broadcaster record.EventBroadcaster

	// supervised is Options.Supervised; stop ends Run; yielded: Run ends because this
	// proxier left the node API socket to another (handover.go).
	supervised bool
	stop       context.CancelFunc
	yielded    atomic.Bool

	// kmu serialises every use of the reconciler (syncs and drains).
	kmu sync.Mutex
	// drainWake tells the drain loop a sync ended (drainloop.go).
	drainWake  chan struct{}
	reconciler *reconcile.Reconciler
	rel        reliability
	started    bool // reconciler.Start succeeded
	needFull   bool // the next sync must be a full resync
	// reading is the kernel read for the next periodic resync (resyncread.go), until a full
	// sync takes it.
	reading     *reconcile.Reading
	triggers    []time.Time
	desiredOpts desired.Options
	// lastNode is the last own Node seen with addresses; keptNode: it stands in for an
	// absent Node or one without addresses (derive.KnownNode).
	lastNode *v1.Node
	keptNode bool
	// clusterIPs indexes the ClusterIP of every Service (the guard's Reserved.ClusterIPs)
	// and claims names the Services that claim addresses (claimsAddresses), both kept up
	// to date per changed Service (fullsync.go); skipped holds, per Service, the skips of
	// its last computation (noteSkips).
	clusterIPs derive.ClusterIPIndex
	claims     map[types.NamespacedName]struct{}
	skipped    skipLedger
	// computed caches every Service's desired state for full resyncs; computes counts the
	// ComputeService calls (for tests).
	computed computedCache
	computes int

	// mu guards the local pod IPs and the IPs whose flows await deletion.
	mu       sync.Mutex
	localIPs desired.PodSet
	flush    []netip.Addr

	ready atomic.Bool
	// nodeAPI is the node API server once it listens: the first sync marks it ready.
	nodeAPI atomic.Pointer[nodeapi.Server]

	// linkChanges is Options.LinkChanges; linkLost asks the next sync to be full.
	linkChanges LinkChanges
	linkLost    atomic.Bool
}

// New builds a Daemon; it touches neither the kernel nor the network.
func New(o Options) (*Daemon, error) {
	if o.Config == nil {
		return nil, errors.New("new daemon: no configuration")
	}
	d := &Daemon{cfg: o.Config, client: o.Client, clock: o.Clock, metrics: o.Metrics, needFull: true, supervised: o.Supervised,
		drainWake: make(chan struct{}, 1)}
	if d.clock == nil {
		d.clock = clock.RealClock{}
	}
	if d.metrics == nil {
		d.metrics = metrics.New()
	}
	d.hostAddrs = o.HostAddresses
	if d.hostAddrs == nil {
		d.hostAddrs = derive.HostAddresses
	}
	d.addrChanges = o.AddressChanges
	if d.addrChanges == nil {
		d.addrChanges = NetlinkAddressChanges
	}
	d.netnsGone = o.NetnsGone
	if d.netnsGone == nil {
		d.netnsGone = netnsGone
	}
	d.linkChanges = o.LinkChanges
	if d.linkChanges == nil {
		d.linkChanges = NetlinkLinkChanges
	}
	d.apiHost = o.APIServerHost
	if d.client == nil {
		c, err := newClient(o.Config.Kubeconfig, o.Config.ClientConnection)
		if err != nil {
			return nil, err
		}
		d.client = c
		if rc, err := restConfig(o.Config.Kubeconfig); err == nil && d.apiHost == "" {
			d.apiHost = rc.Host
		}
	}
	d.skipped = skipLedger{}
	d.claims = map[types.NamespacedName]struct{}{}
	d.recorder = o.Recorder
	if d.recorder == nil {
		d.recorder, d.broadcaster = newRecorder(d)
	}
	if o.Kernel != nil {
		d.kernel = *o.Kernel
	} else {
		k, err := NewKernel()
		if err != nil {
			return nil, err
		}
		d.kernel = k
	}
	d.health = metrics.NewHealth(o.Config.SyncPeriod.Duration, d.clock)
	d.runner = runner.New("sync", d.sync, runner.Options{
		MinInterval: o.Config.MinSyncPeriod.Duration,
		MaxInterval: o.Config.SyncPeriod.Duration,
		RetryBase:   o.retryBase,
		Clock:       d.clock,
		Read:        d.readForResync,
	})
	d.tracker = tracker.New(d.client, o.Config.NodeName, func() {
		d.metrics.KubeProxy.Queued(d.clock.Now())
		d.runner.Run()
	})
	d.health.WatchNode(d.tracker.Node)
	d.health.ObserveRequests(d.metrics.KubeProxy.HealthRequest)
	store, err := nodeapi.NewStore(o.Config.RegistrationDir)
	if err != nil {
		return nil, fmt.Errorf("open registration store: %w", err)
	}
	d.store = store
	d.svcHealth = svchealth.New(nil, nil)
	if sr, ok := d.kernel.IPVS.(ipvs.StatsReader); ok && o.Config.MetricsServiceTraffic {
		d.owners = newVSOwners() // nil otherwise: nothing reads it
		d.metrics.Registry.MustRegister(metrics.NewIPVSCollector(sr, d.owners.snapshot))
	}
	d.svcHealth.SetProxyHealth(func() bool { return d.health.Status().Healthy })
	d.localIPs = localIPs(store)
	return d, nil
}

// Run runs the proxier until ctx is done or a server fails. It returns nil after a clean
// shutdown, and an error wrapping ErrYielded when a supervised proxier left the node API
// socket to another proxier; the kernel state is left in place.
func (d *Daemon) Run(ctx context.Context) error {
	err := d.run(ctx)
	if d.yielded.Load() && !errors.Is(err, ErrYielded) {
		return errors.Join(ErrYielded, err)
	}
	return err
}

func (d *Daemon) run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	logger.Info("Starting kubevs-proxier", "node", d.cfg.NodeName, "scheduler", d.cfg.Scheduler,
		"syncPeriod", d.cfg.SyncPeriod.Duration, "minSyncPeriod", d.cfg.MinSyncPeriod.Duration)
	ctx, cancel := context.WithCancel(ctx)
	d.stop = cancel
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait(); d.svcHealth.Close() }() // every return stops and waits for the servers
	errc := make(chan error, 8)
	serve := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	if err := d.startServers(ctx, serve); err != nil {
		return err
	}
	if d.broadcaster != nil {
		d.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: d.client.CoreV1().Events("")})
		defer d.broadcaster.Shutdown()
	}

	if err := d.tracker.Start(ctx); err != nil {
		return fmt.Errorf("start informers: %w", err)
	}
	logger.Info("Waiting for informers to sync")
	if !cache.WaitForCacheSync(ctx.Done(), d.tracker.HasSynced) {
		return firstErr(errc, nil) // stopped, or a server failed
	}
	d.health.InformersSynced()
	logger.Info("Informers synced", "services", len(d.tracker.Services()))
	d.initReconciler(ctx)
	d.store.OnChange(func() { d.onRegistrations(ctx) })
	d.onRegistrations(ctx) // registrations changed between New and OnChange

	serve("runner", func(ctx context.Context) error { d.runner.Loop(ctx); return nil })
	serve("drains", func(ctx context.Context) error {
		whilePending(ctx, d.clock, drainInterval, drainIdleCheck, d.drainWake, d.drainsPending, d.drainTick)
		return nil
	})
	serve("registration GC", func(ctx context.Context) error {
		d.every(ctx, regGCInterval, func(ctx context.Context) { d.gcRegistrations(ctx) })
		return nil
	})
	if derive.NeedsHostAddresses(d.cfg) {
		serve("address watch", func(ctx context.Context) error { d.watchAddresses(ctx); return nil })
	}
	serve("link watch", func(ctx context.Context) error { d.watchLink(ctx); return nil })
	serve("memory release", func(ctx context.Context) error { d.releaseMemory(ctx); return nil })
	d.runner.Run()

	<-ctx.Done()
	logger.Info("Shutting down; the kernel state stays in place")
	cancel()
	wg.Wait()
	return firstErr(errc, nil)
}

// startServers opens the node API socket and the metrics and health listeners, so a
// configuration error fails at once, and serves them.
func (d *Daemon) startServers(ctx context.Context, serve func(string, func(context.Context) error)) error {
	srv := nodeapi.NewServer(d.cfg.NodeAPISocket, d.store, d.status)
	srv.SetIPValidator(d.validPodIP)
	srv.SetRefusalCounter(func(reason string) { d.metrics.NodeAPIRefused.WithLabelValues(reason).Inc() })
	if err := d.listenNodeAPI(ctx, srv); err != nil {
		return fmt.Errorf("listen on the node API socket: %w", err)
	}
	d.nodeAPI.Store(srv)
	if d.ready.Load() { // a sync finished first (it does not wait for the servers)
		d.markReady(ctx)
	}
	serve("node API", srv.Serve)
	if d.cfg.MetricsDisabled {
		klog.FromContext(ctx).Info("Metrics server off (metricsDisabled)")
	} else {
		ml, err := metrics.Listen(d.cfg.MetricsBindAddress)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		if d.cfg.EnableProfiling {
			klog.FromContext(ctx).Info("Serving Go's runtime profiles at /debug/pprof/ on the metrics address (enableProfiling)", "address", d.cfg.MetricsBindAddress)
		}
		h := d.metrics.Handler(d.cfg.EnableProfiling)
		serve("metrics server", func(ctx context.Context) error { return metrics.Serve(ctx, ml, h) })
	}
	hl, err := metrics.Listen(d.cfg.HealthzBindAddress)
	if err != nil {
		return fmt.Errorf("healthz: %w", err)
	}
	serve("health server", func(ctx context.Context) error { return metrics.Serve(ctx, hl, d.health.Handler()) })
	return nil
}

func firstErr(errc chan error, def error) error {
	select {
	case err := <-errc:
		return err
	default:
		return def
	}
}

// Ready reports whether the informers synced and a first sync succeeded.
func (d *Daemon) Ready() bool { return d.ready.Load() }

// Health returns the daemon's health tracker (for tests and embedding).
func (d *Daemon) Health() *metrics.Health { return d.health }

// markReady leaves the node API's ready mark (nodeapi.MarkReady), which lets the CNI plugin's
// STATUS tell a proxier that is slow to answer from one that never synced.
func (d *Daemon) markReady(ctx context.Context) {
	if srv := d.nodeAPI.Load(); srv != nil {
		if err := srv.MarkReady(); err != nil {
			klog.FromContext(ctx).Error(err, "Leave the node API's ready mark; the CNI plugin's STATUS will report the node not ready whenever the proxier answers late")
		}
	}
}

// status answers the node API's /v1/status.
func (d *Daemon) status() nodeapi.Status {
	s := nodeapi.Status{Ready: d.ready.Load(), NodeName: d.cfg.NodeName}
	if n := d.tracker.Node(); n != nil {
		for _, c := range n.Spec.PodCIDRs {
			if p, err := netip.ParsePrefix(c); err == nil {
				s.PodCIDRs = append(s.PodCIDRs, p)
			}
		}
	}
	switch {
	case s.Ready:
	case !d.tracker.HasSynced():
		s.Message = "waiting for the informers to sync"
	default:
		s.Message = "waiting for the first successful sync"
	}
	return s
}

// every calls fn every interval (on the daemon's clock) until ctx is done.
func (d *Daemon) every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	tick.Every(ctx, d.clock, interval, fn)
}

// drainTick deletes the real servers whose drain is over and retries the quarantined
// virtual servers that are due (every drainInterval while there are any: drainloop.go).
func (d *Daemon) drainTick(ctx context.Context) {
	d.kmu.Lock()
	defer d.kmu.Unlock()
	if d.started && d.reconciler.Draining() > 0 {
		if err := d.reconciler.FinishDrains(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Finish draining real servers")
		}
	}
	d.retryQuarantined(ctx)
}
