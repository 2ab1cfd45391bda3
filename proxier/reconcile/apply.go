package reconcile

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
)

// Apply converges the changed Services only: a nil value means the Service is gone (or
// ignored). The cost is proportional to the changed Services, never to all of them. It
// goes on past a failing object and returns every failure joined, each naming its object;
// the caller should then Resync, which re-reads the kernel and converges. Real servers it
// drains are deleted by FinishDrains (or the next Resync), never here: the caller runs
// FinishDrains while Draining() > 0.
func (r *Reconciler) Apply(ctx context.Context, changed map[types.NamespacedName]*desired.Service) error {
	if !r.started {
		return errors.New("apply: reconciler not started")
	}
	var t touched
	for name, s := range changed {
		if old, ok := r.services[name]; ok {
			r.m.subRefs(name, &old, &t)
			delete(r.services, name)
		}
		if s != nil && !s.IsZero() {
			r.services[name] = r.usable(*s)
			cur := r.services[name]
			r.m.addRefs(name, &cur, &t)
		}
	}
	t.sort()
	r.m.fresh = false
	err := errors.Join(r.converge(ctx, &t), r.flushFlows(ctx))
	r.saveDrains(ctx)
	klog.FromContext(ctx).V(2).Info("Applied changed services", "services", len(changed), "virtualServers", len(t.vs), "err", err)
	return err
}

// Resync re-reads what the kernel holds and converges it to all, the complete set of
// Services: Services absent from all are removed, and owned objects no Service wants
// (virtual servers, addresses, set members) are deleted. It also puts back what someone
// else changed: the fixed rules (one read per table, a write only where they differ), the
// sets, the dummy link (created, set up) and the members, addresses and virtual servers it
// finds gone (see Drift). Use it for the first sync after Start, periodically, and after a
// failed Apply. The first one that wrote the rules also removes kube-proxy's nftables tables
// and iptables-mode chains (leftovers.go); when Start left the rules to it, it writes them
// after its virtual servers (kubeProxyServes).
func (r *Reconciler) Resync(ctx context.Context, all map[types.NamespacedName]desired.Service) error {
	return r.resync(ctx, all, nil, nil)
}

// resync is Resync, reading the kernel under the lock (rd nil) or committing rd's plan or
// probe (delta: see ResyncReadDelta).
func (r *Reconciler) resync(ctx context.Context, all, delta map[types.NamespacedName]desired.Service, rd *Reading) error {
	if !r.started {
		return errors.New("resync: reconciler not started")
	}
	// The kernel's objects kubevs needs whatever the Services: recreated or rewritten if
	// someone removed or changed them (sets before the rules that match them).
	var errs []error
	if err := r.k.Link.EnsureDummy(r.global.Dummy); err != nil {
		errs = append(errs, fmt.Errorf("ensure dummy link %s: %w", r.global.Dummy, err))
	}
	created, err := r.ensureSets()
	errs = append(errs, err)
	var tables []string
	rulesErr := errRulesWait
	if !r.rulesAfterVS {
		var verified map[ipset.Family][]string
		if rd != nil {
			verified = rd.verified
		}
		tables, rulesErr = r.repairRules(verified)
		errs = append(errs, rulesErr)
		r.ensureLocalnet(ctx, rulesErr) // its guard is in place: after a Start that failed to write it, too
	}
	drift := Drift{Sets: len(created), Rules: len(tables)}
	var t touched
	if rd != nil && rd.read != nil && len(created) == 0 {
		// An escalated probe whose caller did not plan it (CopyServices, Plan): plan here,
		// against the Services the Reconciler holds now (what commitPlan would bring a
		// snapshot to anyway).
		rd.plan = makePlan(r.services, rd.read, r.opts.ExcludeCIDRs)
		rd.read = nil
	}
	switch {
	case rd != nil && rd.plan != nil && len(created) == 0:
		// Sets created again hold none of the members the read saw: read under the lock.
		lost, pt := r.commitPlan(all, rd.plan)
		drift.add(lost)
		t = pt
		rd.plan = nil
	case rd != nil && rd.kind == ReadProbe && len(created) == 0:
		// The probe found the kernel as the model holds it: converge what changed since.
		t = r.takeServices(all, delta)
	default:
		var lost Drift
		t, lost, err = r.rebuild(ctx, all)
		drift.add(lost)
		if err != nil {
			r.invalidateRead()
			r.noteDrift(ctx, drift, tables)
			return errors.Join(append(errs, fmt.Errorf("resync: %w", err))...)
		}
	}
	r.invalidateRead() // a Reading begun before this resync is older than its model
	r.noteDrift(ctx, drift, tables)
	t.sort()
	r.resynced = len(t.vs) + len(t.vips) + len(t.entries)
	errs = append(errs, r.converge(ctx, &t), r.FinishDrains(ctx))
	if r.rulesAfterVS {
		rulesErr = r.writeRulesAfterVS(ctx)
		errs = append(errs, rulesErr)
	}
	if rulesErr == nil {
		// Before the flows go: a flow deleted while kube-proxy's nftables DNAT is still
		// in place would be sent by it again, to an endpoint the Service may no longer have.
		r.removeKubeProxyLeftovers(ctx)
	}
	errs = append(errs, r.flushFlows(ctx))
	r.restored = nil  // recorded deadlines serve the drains a restart adopted, once
	r.m.fresh = false // the next Resync reads the kernel again
	err = errors.Join(errs...)
	klog.FromContext(ctx).V(2).Info("Resynced all services", "services", len(r.services), "virtualServers", len(r.m.vs), "converged", r.resynced, "err", err)
	return err
}

// rebuild makes the model from all and a read of the kernel under the lock (or Start's read,
// while the model is fresh). It returns every object to converge, what all wants and all the
// kernel holds (so unwanted objects go), and what the read found lost.
func (r *Reconciler) rebuild(ctx context.Context, all map[types.NamespacedName]desired.Service) (touched, Drift, error) {
	m := newModel()
	r.services = make(map[types.NamespacedName]desired.Service, len(all))
	var t touched
	for name, s := range all {
		if s = r.usable(s); s.IsZero() {
			continue
		}
		r.services[name] = s
	}
	for name := range r.services {
		s := r.services[name]
		m.addRefs(name, &s, &t)
	}
	var lost Drift
	if r.m.fresh {
		// Start has just read the kernel: no need to read it again. Its picture takes m's wants.
		r.m.vips.takeWants(m.vips)
		r.m.entries.takeWants(m.entries)
		m.vs, m.vips, m.entries, m.draining, m.realServers = r.m.vs, r.m.vips, r.m.entries, r.m.draining, r.m.realServers
		r.m = m
	} else {
		m.draining = r.m.draining
		prev := r.m
		r.m = m
		began := r.opts.Now()
		if err := r.load(ctx, m.wantVS, prev.vs); err != nil {
			return t, lost, err
		}
		r.lastFullRead, r.fullReadCost = began, r.opts.Now().Sub(began) // for the budget (probe.go)
		lost = r.lost(&prev)
	}
	for k := range r.m.vs {
		t.vs = append(t.vs, k)
	}
	for a := range r.m.vips.all() {
		t.vips = append(t.vips, a)
	}
	for e := range r.m.entries.all() {
		t.entries = append(t.entries, e)
	}
	return t, lost, nil
}
