package daemon

// What a full sync computes, in O(change). The runner runs one sync at a time, so a change
// that arrives during the periodic full sync waits for all of it: the full sync must not
// walk every Service under kmu when few changed. Three structures follow the tracker per
// changed Service instead of being rebuilt: the ClusterIP index and the set of Services
// claiming addresses (the guard rails' inputs), and the cache of computed Services (with
// the per-Service IPVS owners and the health check ports that follow it). Every Service
// whose state differs from the previous Take is in the next Take (tracker/changes.go), and
// every Take goes through indexServices, so the three equal a rebuild from the tracker
// (TestIncrementalFullSyncMatchesRebuild). They are rebuilt only when the cache is reset
// (the first sync, new options or a new Node): every Service is computed then anyway.
// BenchmarkResyncHold, 10,000 Services x 10 endpoints on fakes: a periodic full sync held
// the lock 74-80 ms CPU rebuilding these (the index alone ~17 ms), 9.0 ms after; what is
// left is mostly the reconciler's commit of the read (reconcile/plan.go).
//
// An ignored Service (ExternalName, headless) can appear or go without being taken (its
// state equals an absent one); it holds no ClusterIP and computes to nothing, so neither
// the index nor the cache misses it.

import (
	"context"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/tracker"
)

// claimsAddresses reports whether svc asks for addresses beyond its ClusterIPs
// (externalIPs, LoadBalancer ingress IPs), which the guard rails check against every
// Service's ClusterIP. An ignored Service claims nothing (it computes to nothing, and
// becoming ignored from absent is no change).
func claimsAddresses(svc *desired.APIService) bool {
	return !desired.Ignored(svc) && (len(svc.Spec.ExternalIPs) > 0 || len(svc.Ingress) > 0)
}

// indexService records name's ClusterIPs and claims as the tracker holds them now.
// kmu must be held.
func (d *Daemon) indexService(name types.NamespacedName) {
	svc, _ := d.tracker.Service(name)
	d.clusterIPs.Set(name, svc)
	if claimsAddresses(svc) {
		d.claims[name] = struct{}{}
	} else {
		delete(d.claims, name)
	}
}

// indexServices records the ClusterIPs and claims of the changed Services before any of
// them is computed, so a Service computed in this sync sees the ClusterIPs of Services
// created in it too. kmu must be held.
func (d *Daemon) indexServices(changed map[types.NamespacedName]struct{}) {
	for name := range changed {
		d.indexService(name)
	}
}

// reindexServices indexes the ClusterIPs and claims of every Service in names anew.
// kmu must be held.
func (d *Daemon) reindexServices(names []types.NamespacedName) {
	d.clusterIPs.Reset()
	clear(d.claims)
	for _, name := range names {
		d.indexService(name)
	}
}

// keepComputed reports whether a computed state goes into the cache: one that programs
// nothing and serves no health check is the same as an absent Service to every reader
// (the reconciler, the owners, the health checks), and leaving it out keeps the cache
// free of deleted and ignored Services.
func keepComputed(s desired.Service) bool { return !s.IsZero() || s.HealthCheckNodePort != 0 }

// storeComputed records s as name's state in the cache (or drops name, keepComputed).
func (c *computedCache) store(name types.NamespacedName, s desired.Service) {
	if keepComputed(s) {
		c.svcs[name] = s
	} else {
		delete(c.svcs, name)
	}
}

// fullDesired returns the desired state of every Service for a full sync and the Services
// it computed. With a valid cache it computes only the changed Services, and, when the
// ClusterIPs moved since the cache was stamped, the Services claiming addresses; delta
// holds their new states (a zero state: the Service went). Otherwise it resets the cache,
// indexes and computes every Service, and delta is nil. all is the cache's own map: the
// caller must not modify it, and the next sync does. kmu must be held, and the changed
// Services indexed (indexServices).
func (d *Daemon) fullDesired(ctx context.Context, changed map[types.NamespacedName]struct{}, dn desired.Node, local desired.PodSet) (all, delta map[types.NamespacedName]desired.Service) {
	if !d.computed.valid(d.desiredOpts, dn) {
		d.computed.reset(d.desiredOpts, dn)
		names := d.tracker.Services()
		d.reindexServices(names)
		for _, name := range names {
			d.computed.store(name, d.compute(ctx, name, dn, local))
		}
		known := make(map[types.NamespacedName]struct{}, len(names))
		for _, name := range names {
			known[name] = struct{}{}
		}
		d.skipped.retain(func(n types.NamespacedName) bool { _, ok := known[n]; return ok })
		d.computed.ipGen = d.clusterIPs.Generation()
		return d.computed.svcs, nil
	}
	redo := changed
	if d.computed.ipGen != d.clusterIPs.Generation() {
		// A Service that claims addresses is checked against every ClusterIP by the guard
		// rails: when the ClusterIPs changed since the cache was stamped, its state may be
		// stale.
		redo = maps.Clone(changed)
		for name := range d.claims {
			redo[name] = struct{}{}
		}
	}
	names := slices.SortedFunc(maps.Keys(redo), tracker.CompareNames) // Events in a stable order
	delta = make(map[types.NamespacedName]desired.Service, len(names))
	for _, name := range names {
		s := d.compute(ctx, name, dn, local)
		d.computed.store(name, s)
		delta[name] = s
	}
	d.computed.ipGen = d.clusterIPs.Generation()
	return d.computed.svcs, delta
}
