package reconcile

// A periodic Resync reads the whole kernel: one iptables-save per table and family (a
// process each), the addresses, every owned set's members, and one IPVS dump per virtual
// server. At 10,000 Services that is seconds in an emulated VM, and a caller that holds its
// lock for all of it makes every change wait. So the read can be taken apart:
//
//	rd := r.BeginRead()     // under the caller's lock: what to read
//	rd.Run(ctx)             // no lock: the kernel reads (Verify, readKernel), the compare (plan.go)
//	if rd.NeedsServices() { // a probe found a difference and read everything:
//		r.CopyServices(rd) // under the lock: the Services to compare with
//		rd.Plan()          // no lock: the compare
//	}
//	r.ResyncRead(ctx, all, rd) // under the lock: repair what differs
//
// While Run reads, Apply (and FinishDrains, RetryQuarantined) may change the kernel: what
// Run saw of the objects they touched may be older than what they did. The Reconciler
// therefore notes, from BeginRead on, every object its writes touch (dirty), and
// ResyncRead takes the model's picture of those, not the stale read's: a read racing a
// partial sync never "repairs" what the sync just did. Whatever else changed the kernel
// after the read (someone else's flush) is found by the next resync. ResyncRead falls back
// to a plain Resync (a read under the lock) when the read is not usable: it failed, it is
// older than the last Resync, Start or SetOptions (a new generation), or a write failed
// meanwhile (the model may lag behind the kernel for what it touched).
//
// The fixed rules are Verified by Run (read only) and Repaired under the lock only for a
// family where Verify found a table that differs or failed: Repair reads again, so it acts
// on the kernel as it is then.
//
// The whole read runs only as often as its CPU budget allows (Options.FullReadBudget);
// between two, BeginRead makes a Reading that probes (probe.go).

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Reading is a read of the kernel for ResyncRead, made by Run without the Reconciler's
// lock. Create it with BeginRead; Run it once; hand it to ResyncRead once.
type Reading struct {
	gen   uint64
	k     Kernel
	dummy string
	rules []desired.FamilyRules

	// services is the Reconciler's Services at BeginRead (its own copy), exclude its
	// ExcludeCIDRs: what Run plans against (plan.go). A probe copies no Services (at
	// 10,000 the copy was 5 MB every resync): when it escalates, Run keeps its read of
	// everything (read), the caller has the Services copied under its lock (CopyServices)
	// and plans without it (Plan); a caller that does not, has ResyncRead plan under it.
	services map[types.NamespacedName]desired.Service
	exclude  []netip.Prefix
	read     *kernelRead

	// probe, when set, makes Run probe first (probe.go); kind is what Run did (ReadFull,
	// ReadProbe, ReadEscalated), began when, took how long (when it read everything).
	probe *probe
	now   func() time.Time
	kind  string
	began time.Time
	took  time.Duration

	ran      bool
	err      error
	plan     *plan
	verified map[ipset.Family][]string // the families Verify read: the tables that differ
}

// Kind says what Run did: ReadFull, ReadProbe or ReadEscalated ("" before Run).
func (rd *Reading) Kind() string { return rd.kind }

// dirty are the objects the Reconciler's writes touched since BeginRead.
type dirty struct {
	vs      map[ipvs.Key]struct{}
	vips    map[netip.Addr]struct{}
	entries map[desired.SetEntry]struct{}
	failed  bool // a write failed: the model may lag behind the kernel
}

// BeginRead returns a Reading of the kernel as the Reconciler owns it now. Call it as any
// other method (under the caller's lock); the Reading's Run needs no lock. A later
// BeginRead, Start, SetOptions or Resync makes this Reading unusable.
func (r *Reconciler) BeginRead() *Reading {
	r.readGen++
	r.dirty = &dirty{vs: map[ipvs.Key]struct{}{}, vips: map[netip.Addr]struct{}{}, entries: map[desired.SetEntry]struct{}{}}
	rd := &Reading{gen: r.readGen, k: r.k, dummy: r.global.Dummy, rules: r.global.Rules,
		exclude: r.opts.ExcludeCIDRs, now: r.opts.Now}
	if r.fullReadDue() {
		rd.services = maps.Clone(r.services)
	} else {
		rd.probe = r.newProbe()
	}
	return rd
}

// Run reads the kernel: the fixed rules of each family (Verify, one iptables-save per
// table), then either everything (the addresses, the owned sets' members, every virtual
// server with its real servers), compared with the Services as BeginRead saw them (a plan,
// see plan.go) so that ResyncRead works only on what differs; or, when BeginRead chose a
// probe, what the probe covers (probe.go), reading everything only if that differs. It
// touches only the kernel adapters, never the Reconciler, so it runs without the lock the
// Reconciler's methods need, beside Apply. A failure is kept for ResyncRead, which then
// reads under the lock (and reports it).
func (rd *Reading) Run(ctx context.Context) {
	rd.began = rd.now()
	rd.verified = map[ipset.Family][]string{}
	for _, fr := range rd.rules {
		differ, err := rd.k.Netfilter.Verify(fr.Family, fr.Ruleset)
		if err != nil {
			klog.FromContext(ctx).V(2).Info("Cannot verify the fixed rules; the resync repairs them under the lock", "family", fr.Family, "err", err)
			continue
		}
		rd.verified[fr.Family] = differ
	}
	full := func() {
		kr, err := readKernel(ctx, rd.k, rd.dummy, nil)
		if rd.err = err; err == nil {
			rd.read = kr
			rd.Plan() // an escalated probe has no Services yet: planned after CopyServices
		}
	}
	var why string
	if rd.err = ctx.Err(); rd.err == nil { // stopping: the dumps are not worth starting
		switch {
		case rd.probe == nil:
			rd.kind = ReadFull
			full()
		default:
			if why = rd.runProbe(full); why != "" {
				rd.kind = ReadEscalated
			} else {
				rd.kind = ReadProbe
			}
		}
		rd.services = nil
	}
	rd.took = rd.now().Sub(rd.began)
	rd.ran = true
	klog.FromContext(ctx).V(2).Info("Read the kernel for a resync", "kind", rd.kind, "differed", why, "took", rd.took, "err", rd.err)
}

// NeedsServices reports whether Run read everything for an escalated probe and waits for
// the Services to plan against: call CopyServices under the lock, then Plan without it.
func (rd *Reading) NeedsServices() bool { return rd.read != nil && rd.services == nil }

// CopyServices gives rd, whose Run escalated, a copy of the Services the Reconciler holds
// now. Call it as any other method (under the caller's lock). Planning against Services
// newer than the read is sound: what the Reconciler wrote since BeginRead takes the
// model's picture at ResyncRead (dirty), and the Services changed since are taken in then.
func (r *Reconciler) CopyServices(rd *Reading) {
	if rd.NeedsServices() && rd.gen == r.readGen {
		rd.services = maps.Clone(r.services)
	}
}

// Plan compares the read with the Services BeginRead (a full read) or CopyServices (an
// escalated probe) gave (plan.go), without the lock; it does nothing unless both are there.
func (rd *Reading) Plan() {
	if rd.read == nil || rd.services == nil {
		return
	}
	rd.plan = makePlan(rd.services, rd.read, rd.exclude)
	rd.read, rd.services = nil, nil
}

// unusable says why rd cannot serve ResyncRead, or "" when it can.
func (r *Reconciler) unusable(rd *Reading) string {
	switch {
	case rd == nil:
		return "no read"
	case !rd.ran:
		return "not run"
	case rd.err != nil:
		return fmt.Sprintf("the read failed: %v", rd.err)
	case rd.gen != r.readGen || r.dirty == nil:
		return "the read is older than the last resync, start or options change"
	case r.dirty.failed:
		return "a write failed since the read began"
	}
	return ""
}

// ResyncRead is Resync with the kernel read by rd (see BeginRead) instead of under the
// lock, except where kubevs wrote since: rd's picture of the objects written since
// BeginRead is replaced by the model's. When rd cannot be used it is Resync.
func (r *Reconciler) ResyncRead(ctx context.Context, all map[types.NamespacedName]desired.Service, rd *Reading) error {
	return r.ResyncReadDelta(ctx, all, nil, rd)
}

// ResyncReadDelta is ResyncRead told which Services may differ from what the Reconciler was
// last handed (by Apply or a resync): delta holds them with their state in all (the zero
// Service for one gone), and every other Service of all must hold what it was last handed.
// When rd was a probe that found the kernel as the model holds it, the resync then takes in
// delta alone instead of comparing every Service of all with the model's (a periodic resync
// on an idle node: nothing). delta nil: any Service may differ.
func (r *Reconciler) ResyncReadDelta(ctx context.Context, all, delta map[types.NamespacedName]desired.Service, rd *Reading) error {
	if why := r.unusable(rd); why != "" {
		klog.FromContext(ctx).V(2).Info("Resync reads the kernel under the lock", "reason", why)
		return r.Resync(ctx, all)
	}
	if rd.kind != ReadProbe { // it read everything: the budget counts from it
		r.lastFullRead, r.fullReadCost = rd.began, rd.took
	}
	return r.resync(ctx, all, delta, rd)
}

// noteDirty records the objects of t as written since BeginRead.
func (r *Reconciler) noteDirty(t *touched) {
	if r.dirty == nil {
		return
	}
	for _, k := range t.vs {
		r.dirty.vs[k] = struct{}{}
	}
	for _, a := range t.vips {
		r.dirty.vips[a] = struct{}{}
	}
	for _, e := range t.entries {
		r.dirty.entries[e] = struct{}{}
	}
}

// noteFailed records that a write failed since BeginRead.
func (r *Reconciler) noteFailed(err error) {
	if err != nil && r.dirty != nil {
		r.dirty.failed = true
	}
}

// overlay replaces, in m's picture of the kernel (the read's), what the read saw of the
// objects written since BeginRead by what the model (prev) holds of them.
func (d *dirty) overlay(m, prev *model) {
	for k := range d.vs {
		if st, ok := prev.vs[k]; ok {
			m.vs[k] = st
		} else {
			delete(m.vs, k)
		}
	}
	for a := range d.vips {
		m.vips.hold(a, prev.vips.has(a))
	}
	for e := range d.entries {
		m.entries.hold(e, prev.entries.has(e))
	}
}

// invalidateRead makes any Reading begun so far unusable.
func (r *Reconciler) invalidateRead() {
	r.readGen++
	r.dirty = nil
}
