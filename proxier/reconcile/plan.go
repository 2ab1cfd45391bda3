package reconcile

// The comparison half of a periodic resync, made without the lock. Reading's Run does more
// than read: it builds the model a resync would build (the wants of the Services as
// BeginRead saw them, the kernel as Run read it) and lists the objects where the two
// differ (a plan). ResyncRead then holds the caller's lock only to commit the plan: it
// takes in what changed since BeginRead, and converges the objects that differ and no
// others. Its cost is one pass over the Services comparing each with the snapshot (slice
// compares, no map writes) plus the work on what differs, where a resync under the lock
// rebuilt every map and converged every object (BenchmarkPeriodicResync).
//
// What changed since BeginRead is taken in two ways, so a resync never undoes it:
//   - the Services: every Service whose desired state differs from the snapshot (a partial
//     sync applied it, or the caller's resync brings it) has its wants replaced in the plan's
//     model, and its objects are converged;
//   - the kernel: the objects the Reconciler wrote since BeginRead (dirty) take the model's
//     picture, not the read's (dirty.overlay), and are converged against it.
//
// A plan is dropped for a resync under the lock when the read is not usable (see unusable)
// or when the resync had to create sets again (someone destroyed them after the read).

import (
	"maps"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// plan is a resync prepared by Run: the model of services against the kernel read, and
// the objects where wants and kernel differ.
type plan struct {
	// services is the snapshot BeginRead took (usable values); it becomes r.services.
	services map[types.NamespacedName]desired.Service
	m        model
	// foreign are the virtual servers read that services do not own (see owned): kubevs
	// may still own them by the model at commit (it created them).
	foreign map[ipvs.Key]*vsState
	// t are the objects whose kernel state differs from the wants.
	t touched
}

// makePlan builds the plan of the Services services against the kernel read kr; kr's maps
// become the plan's. It uses no Reconciler state, so Run calls it without the lock.
func makePlan(services map[types.NamespacedName]desired.Service, kr *kernelRead, exclude []netip.Prefix) *plan {
	p := &plan{services: services, m: newModel(), foreign: map[ipvs.Key]*vsState{}}
	m := &p.m
	// The read's maps take the wants, so the read's copies of the keys Services want go.
	m.vips, m.entries = kr.vips, kr.entries
	for name := range services {
		s := services[name]
		m.addRefs(name, &s, nil)
	}
	for k, st := range kr.vs {
		if owned(k, kr.vips, kr.marks, m.wantVS, exclude) {
			m.vs[k] = st
		} else {
			p.foreign[k] = st
		}
	}
	t := &p.t
	for k := range m.wantVS {
		want, _, _ := m.want(k)
		have := m.vs[k]
		if have == nil || !have.same(want.VirtualServer) || !have.rs.equal(want.RealServers) {
			t.vs = append(t.vs, k)
			continue
		}
		have.share(want.RealServers) // the read's copy goes

	}
	for k := range m.vs {
		if _, ok := m.wantVS[k]; !ok {
			t.vs = append(t.vs, k)
		}
	}
	t.vips = m.vips.appendDiff(t.vips)
	t.entries = m.entries.appendDiff(t.entries)
	return p
}

// sameKernelState reports whether a and b want the same kernel state. Values that share
// their slices (the caller's cache hands the same ones again) are equal at once.
func sameKernelState(a, b desired.Service) bool {
	if shared(a.VirtualServers, b.VirtualServers) && shared(a.VIPs, b.VIPs) && shared(a.Entries, b.Entries) {
		return true
	}
	return slices.EqualFunc(a.VirtualServers, b.VirtualServers, func(x, y desired.VirtualServer) bool {
		return x.VirtualServer == y.VirtualServer && slices.Equal(x.RealServers, y.RealServers)
	}) && slices.Equal(a.VIPs, b.VIPs) && slices.Equal(a.Entries, b.Entries)
}

// commitPlan makes p, brought up to date, the model: the Services of all (r.usable) replace
// the snapshot's where they differ, the objects written since BeginRead take the current
// model's picture, the drains and quarantined virtual servers carry over. It returns the
// objects to converge and the drift: the objects among them the model had and the kernel
// lost. Call it under the lock, with r.dirty set (the Reading is usable).
func (r *Reconciler) commitPlan(all map[types.NamespacedName]desired.Service, p *plan) (Drift, touched) {
	m, prev := &p.m, &r.m
	t := p.t
	m.take(p.services, all, r.usable, &t)
	// A virtual server the read did not own is kubevs's when the model holds it (kubevs
	// created it) or a Service now wants it.
	for k, st := range p.foreign {
		_, known := prev.vs[k]
		if _, wanted := m.wantVS[k]; known || (wanted && !excluded(k.Address, r.opts.ExcludeCIDRs)) {
			m.vs[k] = st
			t.vs = append(t.vs, k)
		}
	}
	d := r.dirty
	d.overlay(m, prev)
	t.vs = append(t.vs, slices.Collect(maps.Keys(d.vs))...)
	t.vips = append(t.vips, slices.Collect(maps.Keys(d.vips))...)
	t.entries = append(t.entries, slices.Collect(maps.Keys(d.entries))...)
	r.retryFailed(&t)
	m.draining = prev.draining
	m.pruneDrains()
	t.sort()
	var lost Drift
	for _, k := range t.vs {
		if _, had := prev.vs[k]; had && m.vs[k] == nil {
			lost.VirtualServers++
		}
	}
	for _, a := range t.vips {
		if prev.vips.has(a) && !m.vips.has(a) {
			lost.Addresses++
		}
	}
	for _, e := range t.entries {
		if prev.entries.has(e) && !m.entries.has(e) {
			lost.SetMembers++
		}
	}
	m.fresh = true
	m.recount()
	r.m = *m
	r.services = p.services
	return lost, t
}

// take makes services (what each Service was last asked to hold, the wants m counts) hold
// all: each Service whose kernel state differs is uncounted and counted again, each absent
// from all uncounted; the objects touched go to t. usable is Reconciler.usable. Its cost is
// a compare per Service (sameKernelState), map writes only for those that differ.
func (m *model) take(services, all map[types.NamespacedName]desired.Service, usable func(desired.Service) desired.Service, t *touched) {
	snapshot, kept := len(services), 0
	for name, s := range all {
		if m.takeOne(services, name, s, usable, t) {
			kept++
		}
	}
	for name, old := range services {
		if kept == snapshot {
			break // every Service of the snapshot is in all
		}
		if _, ok := all[name]; !ok {
			m.subRefs(name, &old, t)
			delete(services, name)
			kept++
		}
	}
}

// takeDelta is take when every Service but those of delta is known to hold what it holds
// already: only delta's are compared (the zero Service: gone).
func (m *model) takeDelta(services, delta map[types.NamespacedName]desired.Service, usable func(desired.Service) desired.Service, t *touched) {
	for name, s := range delta {
		m.takeOne(services, name, s, usable, t)
	}
}

// takeOne makes services hold s (usable) for name, counting it again in m when its kernel
// state differs; it reports whether services held name before.
func (m *model) takeOne(services map[types.NamespacedName]desired.Service, name types.NamespacedName, s desired.Service, usable func(desired.Service) desired.Service, t *touched) bool {
	u := usable(s)
	old, had := services[name]
	if had && sameKernelState(old, u) {
		return true
	}
	if had {
		m.subRefs(name, &old, t)
		delete(services, name)
	}
	if !u.IsZero() {
		services[name] = u
		m.addRefs(name, &u, t)
	}
	return had
}

// takeServices is the commit of a probe that found nothing different (probe.go): the
// model's picture of the kernel stays, its wants take all (only delta's Services, when the
// caller knows them: ResyncReadDelta), and the objects to converge are those of the
// Services that changed and those whose converge failed.
func (r *Reconciler) takeServices(all, delta map[types.NamespacedName]desired.Service) touched {
	var t touched
	if delta != nil {
		r.m.takeDelta(r.services, delta, r.usable, &t)
	} else {
		r.m.take(r.services, all, r.usable, &t)
	}
	r.retryFailed(&t)
	return t
}

// retryFailed adds to t the virtual servers whose last converges failed: a resync retries
// them, quarantined or not.
func (r *Reconciler) retryFailed(t *touched) {
	for k := range r.failures {
		t.vs = append(t.vs, k)
	}
}

// shared reports whether a and b are the same slice (same length and first element).
func shared[E any](a, b []E) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
