package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/daemon/svchealth"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/metrics"
	"github.com/kubevs/kubevs/proxier/reconcile"
	"github.com/kubevs/kubevs/proxier/runner"
)

// options derives Compute's options from the configuration, the Node, the host's
// addresses (for nodePortAddresses and the guard rails), the API server's endpoints and the
// ClusterIP index. A failed read of the addresses keeps the previous NodePortAddresses and
// reserved node addresses and is returned, so the caller logs it. kmu must be held.
func (d *Daemon) options(node *v1.Node) (desired.Options, error) {
	hosts, err := d.hostAddrs()
	o := derive.Options(d.cfg, node, hosts)
	o.Reserved.APIServers = d.apiServers()
	o.Reserved.ClusterIPs = &d.clusterIPs
	if err != nil {
		o.NodePortAddresses = d.desiredOpts.NodePortAddresses
		o.Reserved.NodeAddresses = d.desiredOpts.Reserved.NodeAddresses
		return o, fmt.Errorf("read the node's addresses: %w", err)
	}
	return o, nil
}

// initReconciler builds the reconciler once the informers synced (the Node is known) and
// starts it. A failed Start is retried by the first sync.
func (d *Daemon) initReconciler(ctx context.Context) {
	d.kmu.Lock()
	defer d.kmu.Unlock()
	o, err := d.options(d.knownNode(ctx))
	if err != nil {
		klog.FromContext(ctx).Error(err, "Deriving the options")
	}
	d.desiredOpts = o
	d.metrics.KubeProxy.SetFamilies(familyNames(o))
	logRefusedNodePorts(ctx, o)
	d.setHealthAddresses(ctx)
	ro := reconcilerOptions(d.cfg, d.desiredOpts, d.clock.Now)
	if d.cfg.StateDir != "" {
		// What earlier runs changed: a route_localnet they set without loopback NodePorts
		// now is turned back (reconcile.Options.Recorded).
		if ro.Recorded, err = loadSysctlChanges(d.cfg.StateDir); err != nil {
			klog.FromContext(ctx).Error(err, "Cannot read the sysctls earlier runs changed")
		}
	}
	d.reconciler = reconcile.New(d.kernel, ro)
	d.startReconciler(ctx)
}

// reconcilerOptions maps the configuration onto the reconciler's options:
// ipvs.gracefulTerminationPeriod is the drain time, and zero deletes removed real servers
// at once (NoDrain); unset (not defaulted) leaves the reconciler's default.
func reconcilerOptions(c *config.Configuration, o desired.Options, now func() time.Time) reconcile.Options {
	ro := reconcile.Options{
		Desired:      o,
		ExcludeCIDRs: config.ParsedCIDRs(c.IPVS.ExcludeCIDRs),
		Now:          now,
		Timeouts:     ipvs.Timeouts{TCP: c.IPVS.TCPTimeout.Duration, TCPFin: c.IPVS.TCPFinTimeout.Duration, UDP: c.IPVS.UDPTimeout.Duration},
		// RaisedSysctls: the conntrack limits and timeouts, kube-proxy's conntrack.* (conntrack.go).
		RaisedSysctls: conntrackSysctls(c.Conntrack, runtime.NumCPU()),
	}
	if m := c.FullReadMillicores; m != nil {
		ro.FullReadBudget = float64(*m) / 1000
	}
	if c.StateDir != "" {
		ro.DrainFile = filepath.Join(c.StateDir, drainFile)
	}
	if p := c.IPVS.GracefulTerminationPeriod; p != nil {
		ro.DrainTimeout = p.Duration
		ro.NoDrain = p.Duration == 0
	}
	return ro
}

// startReconciler runs reconciler.Start; kmu must be held.
func (d *Daemon) startReconciler(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if err := d.reconciler.Start(ctx); err != nil {
		logger.Error(err, "Starting the reconciler failed; retrying with the next sync")
		return
	}
	d.started = true
	if rel, err := d.kernel.Sysctl.Get("kernel/osrelease"); err == nil {
		if ok, known := schedulerInKernel("/", strings.TrimSpace(rel), d.cfg.Scheduler); known && !ok {
			logger.Info("Warning: the running kernel seems to lack the configured IPVS scheduler; virtual servers using it will fail", "scheduler", d.cfg.Scheduler, "module", "ip_vs_"+d.cfg.Scheduler)
		}
	}
	if err := saveSysctlChanges(d.cfg.StateDir, d.reconciler.SysctlChanges()); err != nil {
		logger.Error(err, "Cannot record the sysctls kubevs changed; --cleanup will not restore them")
	}
}

// sync is the runner's function: a partial sync of the changed Services, or a full resync
// (first sync, periodic, after a failure, after a Node change); it reports which.
func (d *Daemon) sync(ctx context.Context, why runner.Reason) (full bool, err error) {
	if !d.tracker.HasSynced() {
		return false, nil // no kernel change before the informers have synced
	}
	defer d.wakeDrains() // after kmu is released: the sync may have started drains
	d.kmu.Lock()
	defer d.kmu.Unlock()
	logger := klog.FromContext(ctx)
	if !d.started {
		d.startReconciler(ctx)
		if !d.started {
			d.metrics.SyncFailures.WithLabelValues(metrics.Full).Inc()
			return true, errors.New("reconciler not started")
		}
	}
	ch := d.tracker.Take()
	d.metrics.KubeProxy.Taken(len(ch.Services), len(ch.Triggers))
	d.triggers = append(d.triggers, ch.Triggers...)
	node := d.knownNode(ctx)
	addrsChanged := d.addrsChanged.Swap(false) // taken by any full sync, not left for the next
	linkLost := d.linkLost.Swap(false)
	// The API server's endpoints moved (default/kubernetes changed): every Service's
	// externalIPs and LoadBalancer IPs are checked again.
	apiMoved := !sameAPIServers(d.apiServers(), d.desiredOpts.Reserved.APIServers)
	full = d.needFull || why != runner.Requested || ch.Node || addrsChanged || linkLost || apiMoved
	// Only a resync that is periodic and nothing else uses the read made for it: any other
	// reason (a retry, the Node, the addresses or the link changed) reads under kmu.
	periodicOnly := why == runner.Periodic && !d.needFull && !ch.Node && !addrsChanged && !linkLost && !apiMoved
	d.indexServices(ch.Services)
	if full {
		d.updateOptions(ctx, node)
	}
	dn := derive.Node(d.cfg.NodeName, node)
	d.mu.Lock()
	local := maps.Clone(d.localIPs)
	flush := d.flush
	d.flush = nil
	d.mu.Unlock()
	for _, ip := range flush {
		if _, ok := local[ip]; !ok { // not registered again meanwhile (IP reuse)
			d.reconciler.DeletePodFlows(ip)
		}
	}

	if !full && len(ch.Services) == 0 && d.reconciler.PendingFlowDeletes() == 0 {
		return false, nil // every change cancelled out: nothing to do, nothing to measure
	}
	mode := metrics.Partial
	start := d.clock.Now()
	if full {
		mode = metrics.Full
		all, delta := d.fullDesired(ctx, ch.Services, dn, local) // fullsync.go
		recomputed := len(all)
		if delta != nil {
			recomputed = len(delta)
			d.serveHealthChecks(ctx, delta, false)
			d.owners.update(delta, false)
		} else {
			d.serveHealthChecks(ctx, all, true)
			d.owners.update(all, true)
		}
		rd := d.reading
		d.reading = nil
		if periodicOnly && rd != nil {
			// The kernel was read without kmu; every Service outside delta is as the
			// partial syncs handed it (nil delta: all were computed again).
			err = d.reconciler.ResyncReadDelta(ctx, all, delta, rd)
		} else {
			err = d.reconciler.Resync(ctx, all)
		}
		logger.V(2).Info("Full sync", "reason", why, "services", len(all), "recomputed", recomputed, "err", err)
	} else {
		changed := make(map[types.NamespacedName]*desired.Service, len(ch.Services))
		cache := d.computed.valid(d.desiredOpts, dn)
		if !cache {
			d.computed.svcs = nil // the next full sync computes every Service
		}
		for name := range ch.Services {
			s := d.compute(ctx, name, dn, local)
			changed[name] = &s
			if cache {
				d.computed.store(name, s)
			}
		}
		hc := make(map[types.NamespacedName]desired.Service, len(changed))
		for name, s := range changed {
			hc[name] = *s
		}
		d.serveHealthChecks(ctx, hc, false)
		d.owners.update(hc, false)
		err = d.reconciler.Apply(ctx, changed)
		logger.V(2).Info("Partial sync", "services", len(changed), "err", err)
	}
	end := d.clock.Now()
	d.metrics.SyncDuration.WithLabelValues(mode).Observe(end.Sub(start).Seconds())
	pending := len(d.tracker.PendingChanges())
	d.metrics.ChangesPending.Set(float64(pending))
	d.metrics.KubeProxy.Synced(end.Sub(start), pending, len(d.triggers))
	d.observeReliability()
	if err != nil {
		// After a failed full sync only a full one can be trusted (the runner makes changes
		// wait for its retry); after a failed partial sync, changes go on as partial syncs
		// and the runner's retry resyncs.
		d.needFull = d.needFull || full
		d.metrics.SyncFailures.WithLabelValues(mode).Inc()
		return full, err
	}
	d.needFull = false
	for _, t := range d.triggers {
		if lat := end.Sub(t); lat >= 0 {
			d.metrics.NetworkProgrammingLatency.Observe(lat.Seconds())
		}
	}
	d.metrics.KubeProxy.Succeeded(end, d.triggers)
	d.triggers = nil
	d.observeProgrammed()
	d.health.SyncSucceeded()
	d.metrics.LastSync.Set(float64(end.Unix()))
	if !d.ready.Swap(true) {
		logger.Info("First sync done: ready", "duration", end.Sub(start))
		d.markReady(ctx)
	}
	return full, nil
}

// knownNode is the own Node to compute with: the tracker's, or the last one seen with
// addresses while the Node is absent or has none (deleted, or recreated and not yet
// updated by its kubelet), so NodePorts stay on the node's last known addresses
// (derive.KnownNode). It logs when it starts and stops standing in. kmu must be held.
func (d *Daemon) knownNode(ctx context.Context) *v1.Node {
	cur := d.tracker.Node()
	node, kept := derive.KnownNode(d.lastNode, cur)
	logger := klog.FromContext(ctx)
	switch {
	case kept && !d.keptNode:
		logger.Info("The Node is absent or has no addresses; keeping its last known addresses", "node", d.cfg.NodeName, "present", cur != nil, "addresses", d.lastNode.Status.Addresses)
	case !kept && d.keptNode:
		logger.Info("The Node has addresses again", "node", d.cfg.NodeName)
	}
	d.keptNode = kept
	if !kept && node != nil && len(derive.Node(d.cfg.NodeName, node).Addresses) > 0 {
		d.lastNode = node
	}
	return node
}

// compute returns the desired state of one Service, and notes its skips (noteSkips: the
// new ones are counted and, when refusals, reported).
func (d *Daemon) compute(ctx context.Context, name types.NamespacedName, node desired.Node, local desired.PodSet) desired.Service {
	d.computes++
	svc, eps := d.tracker.Service(name)
	s, errs := desired.ComputeService(d.desiredOpts, node, local, svc, eps)
	logger := klog.FromContext(ctx)
	for _, err := range errs {
		logger.V(2).Info("Skipped part of a Service", "service", name, "err", err)
	}
	d.noteSkips(ctx, name, svc, errs)
	logger.V(4).Info("Computed Service", "service", name, "virtualServers", len(s.VirtualServers), "vips", len(s.VIPs), "entries", len(s.Entries))
	return s
}

// skipReason names the reason of a ComputeService error for the objects_skipped metric:
// desired's SkipError Reason, "other" for anything else.
func skipReason(err error) string { return string(desired.ReasonOf(err)) }

func (d *Daemon) observeProgrammed() {
	s := d.reconciler.Stats()
	d.metrics.ObjectsProgrammed.WithLabelValues(metrics.VirtualServers).Set(float64(s.VirtualServers))
	d.metrics.ObjectsProgrammed.WithLabelValues(metrics.RealServers).Set(float64(s.RealServers))
	d.metrics.ObjectsProgrammed.WithLabelValues(metrics.VIPs).Set(float64(s.Addresses))
	d.metrics.ObjectsProgrammed.WithLabelValues(metrics.SetEntries).Set(float64(s.SetMembers))
}

// updateOptions derives the options again before a full sync (the Node or the host's
// addresses may have changed); when they differ, the reconciler's fixed rules follow and
// the full sync recomputes every Service with them. kmu must be held.
func (d *Daemon) updateOptions(ctx context.Context, node *v1.Node) {
	logger := klog.FromContext(ctx)
	o, err := d.options(node)
	if err != nil {
		logger.Error(err, "Deriving the options; keeping the previous NodePort addresses")
	}
	if derive.Equal(o, d.desiredOpts) {
		return
	}
	logger.Info("Options changed", "nodePortAddresses", o.NodePortAddresses, "families", o.Families)
	logRefusedNodePorts(ctx, o)
	d.desiredOpts = o
	d.metrics.KubeProxy.SetFamilies(familyNames(o))
	d.setHealthAddresses(ctx)
	if err := d.reconciler.SetOptions(ctx, o); err != nil {
		logger.Error(err, "Changing the fixed rules for new options")
		d.needFull = true
	}
}

// setHealthAddresses makes the healthCheckNodePort listeners follow the NodePort addresses:
// every address when nodePortAddresses is not set (as kube-proxy listens), none when its
// CIDRs match no node address. kmu must be held.
func (d *Daemon) setHealthAddresses(ctx context.Context) {
	addrs := d.desiredOpts.NodePortAddresses
	if d.desiredOpts.OnlyNodePortAddresses && addrs == nil {
		addrs = []netip.Addr{} // nowhere
	}
	if err := d.svcHealth.SetAddresses(addrs); err != nil {
		klog.FromContext(ctx).Error(err, "Serving health check node ports on new addresses")
	}
}

// serveHealthChecks opens, updates or closes the healthCheckNodePort listeners of the
// computed Services: all of them on a full sync, the changed ones otherwise. A port that
// cannot be opened is logged and tried again with the next sync; it fails no sync.
func (d *Daemon) serveHealthChecks(ctx context.Context, svcs map[types.NamespacedName]desired.Service, full bool) {
	hc := make(map[types.NamespacedName]svchealth.Entry, len(svcs))
	for name, s := range svcs {
		if s.HealthCheckNodePort != 0 || !full {
			hc[name] = svchealth.Entry{Port: s.HealthCheckNodePort, LocalEndpoints: s.LocalEndpoints}
		}
	}
	update := d.svcHealth.Update
	if full {
		update = d.svcHealth.Sync
	}
	if err := update(hc); err != nil {
		klog.FromContext(ctx).Error(err, "Serving health check node ports")
	}
}

// familyNames names the IP families of o as kube-proxy's ip_family label does.
func familyNames(o desired.Options) []string {
	var out []string
	for _, f := range desired.Families(o) {
		if f == ipset.IPv6 {
			out = append(out, string(v1.IPv6Protocol))
		} else {
			out = append(out, string(v1.IPv4Protocol))
		}
	}
	return out
}
