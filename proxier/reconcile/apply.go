package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// Start prepares the kernel and adopts what it already holds: it ensures the dummy link,
// the sysctls, the owned sets and the fixed iptables rules, then reads the owned virtual
// servers, addresses and set members into the Reconciler's model. It flushes nothing: what
// is already right stays as it is (weights included). Call it once, after the informers
// synced, then Resync with every Service.
func (r *Reconciler) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	kv := desired.KernelVersion{Major: 6}
	if rel, err := r.k.Sysctl.Get("kernel/osrelease"); err != nil {
		logger.Error(err, "Cannot read the kernel version, assuming a recent kernel")
	} else if kv, err = desired.ParseKernelVersion(rel); err != nil {
		logger.Error(err, "Cannot parse the kernel version, assuming a recent kernel")
		kv = desired.KernelVersion{Major: 6}
	}
	r.global = desired.Global(r.opts.Desired, kv)
	var errs []error
	if err := r.k.Link.EnsureDummy(r.global.Dummy); err != nil {
		errs = append(errs, fmt.Errorf("ensure dummy link %s: %w", r.global.Dummy, err))
	}
	errs = append(errs, r.ensureSysctls(ctx), r.ensureSets(), r.ensureRules())
	errs = append(errs, r.load(ctx, nil))
	r.started = true
	logger.V(0).Info("Reconciler started", "kernel", kv, "virtualServers", len(r.m.vs), "addresses", len(r.m.bound), "setMembers", len(r.m.entries))
	return errors.Join(errs...)
}

func (r *Reconciler) ensureSysctls(ctx context.Context) error {
	var errs []error
	for _, s := range r.global.Sysctls {
		cur, err := r.k.Sysctl.Get(s.Name)
		if err == nil && satisfied(cur, s) {
			continue
		}
		if err := r.k.Sysctl.Set(s.Name, s.Value); err != nil {
			errs = append(errs, fmt.Errorf("set sysctl %s=%s: %w", s.Name, s.Value, err))
			continue
		}
		klog.FromContext(ctx).V(2).Info("Set sysctl", "name", s.Name, "old", cur, "new", s.Value)
		r.changed = append(r.changed, SysctlChange{Name: s.Name, Old: cur, New: s.Value})
	}
	return errors.Join(errs...)
}

func satisfied(cur string, s desired.Sysctl) bool {
	if cur == s.Value {
		return true
	}
	if !s.AtLeast {
		return false
	}
	c, err1 := strconv.Atoi(cur)
	w, err2 := strconv.Atoi(s.Value)
	return err1 == nil && err2 == nil && c >= w
}

func (r *Reconciler) ensureSets() error {
	names, err := r.k.IPSet.Sets()
	if err != nil {
		return fmt.Errorf("list sets: %w", err)
	}
	var errs []error
	for _, s := range r.global.Sets {
		if slices.Contains(names, s.Name) {
			continue
		}
		if err := r.k.IPSet.CreateSet(s); err != nil && !errors.Is(err, ipset.ErrExist) {
			errs = append(errs, fmt.Errorf("create set %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// ensureRules writes the fixed ruleset of each family unless the kernel already holds it.
func (r *Reconciler) ensureRules() error {
	var errs []error
	for _, fr := range r.global.Rules {
		if cur, err := r.k.Netfilter.Dump(fr.Family); err == nil && equalRules(cur, fr.Ruleset) {
			continue
		}
		if err := r.k.Netfilter.Ensure(fr.Family, fr.Ruleset); err != nil {
			errs = append(errs, fmt.Errorf("ensure %s rules: %w", fr.Family, err))
		}
	}
	return errors.Join(errs...)
}

// SetOptions changes the options of the desired state (cluster CIDRs, masquerade-all,
// strict ARP, families) and rewrites the fixed rules, sets and sysctls if they changed.
// The caller recomputes every Service and calls Resync afterwards.
func (r *Reconciler) SetOptions(ctx context.Context, o desired.Options) error {
	r.opts.Desired = o
	if !r.started {
		return nil
	}
	kv := desired.KernelVersion{Major: 6}
	if rel, err := r.k.Sysctl.Get("kernel/osrelease"); err == nil {
		if v, err := desired.ParseKernelVersion(rel); err == nil {
			kv = v
		}
	}
	r.global = desired.Global(o, kv)
	return errors.Join(r.ensureSysctls(ctx), r.ensureSets(), r.ensureRules())
}

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
			r.services[name] = *s
			cur := r.services[name]
			r.m.addRefs(name, &cur, &t)
		}
	}
	t.sort()
	r.m.fresh = false
	err := r.converge(ctx, &t)
	klog.FromContext(ctx).V(2).Info("Applied changed services", "services", len(changed), "virtualServers", len(t.vs), "err", err)
	return err
}

// Resync re-reads what the kernel holds and converges it to all, the complete set of
// Services: Services absent from all are removed, and owned objects no Service wants
// (virtual servers, addresses, set members) are deleted. Use it for the first sync after
// Start, periodically, and after a failed Apply.
func (r *Reconciler) Resync(ctx context.Context, all map[types.NamespacedName]desired.Service) error {
	if !r.started {
		return errors.New("resync: reconciler not started")
	}
	m := newModel()
	r.services = make(map[types.NamespacedName]desired.Service, len(all))
	var t touched
	for name, s := range all {
		if s.IsZero() {
			continue
		}
		r.services[name] = s
	}
	for name := range r.services {
		s := r.services[name]
		m.addRefs(name, &s, &t)
	}
	// The kernel's objects kubevs needs whatever the Services: recreated if someone
	// removed them (the rules are rewritten only by Start and SetOptions).
	var errs []error
	if err := r.k.Link.EnsureDummy(r.global.Dummy); err != nil {
		errs = append(errs, fmt.Errorf("ensure dummy link %s: %w", r.global.Dummy, err))
	}
	errs = append(errs, r.ensureSets())
	if r.m.fresh {
		// Start has just read the kernel: no need to read it again.
		m.vs, m.bound, m.entries, m.sets, m.draining = r.m.vs, r.m.bound, r.m.entries, r.m.sets, r.m.draining
		r.m = m
	} else {
		m.draining = r.m.draining
		r.m = m
		if err := r.load(ctx, m.wantVS); err != nil {
			return errors.Join(append(errs, fmt.Errorf("resync: %w", err))...)
		}
	}
	// Everything the kernel holds is touched too, so unwanted objects go.
	for k := range r.m.vs {
		t.vs = append(t.vs, k)
	}
	for a := range r.m.bound {
		t.vips = append(t.vips, a)
	}
	for e := range r.m.entries {
		t.entries = append(t.entries, e)
	}
	t.sort()
	errs = append(errs, r.converge(ctx, &t), r.FinishDrains(ctx))
	r.m.fresh = false // the next Resync reads the kernel again
	err := errors.Join(errs...)
	klog.FromContext(ctx).V(2).Info("Resynced all services", "services", len(r.services), "virtualServers", len(r.m.vs), "err", err)
	return err
}

// load reads the owned state of the kernel into the model: the addresses on the dummy
// link, the members of the owned sets, and the owned virtual servers with their real
// servers. A virtual server is owned when its address is bound to the dummy link, or its
// address,protocol:port is in a cluster-IP set, or a Service wants it (wanted may be nil);
// never when its address is in ExcludeCIDRs.
func (r *Reconciler) load(ctx context.Context, wanted map[ipvs.Key][]owner) error {
	m := &r.m
	m.vs, m.bound, m.entries, m.sets = map[ipvs.Key]*vsState{}, map[netip.Addr]struct{}{}, map[desired.SetEntry]struct{}{}, map[string]struct{}{}
	addrs, err := r.k.Link.Addresses(r.global.Dummy)
	if err != nil && !errors.Is(err, link.ErrNotFound) {
		return fmt.Errorf("list addresses of %s: %w", r.global.Dummy, err)
	}
	for _, a := range addrs {
		m.bound[a.Unmap()] = struct{}{}
	}
	names, err := r.k.IPSet.Sets()
	if err != nil {
		return fmt.Errorf("list sets: %w", err)
	}
	clusterIPs := map[string]struct{}{}
	for _, name := range desired.OwnedSets() {
		if !slices.Contains(names, name) {
			continue
		}
		m.sets[name] = struct{}{}
		es, err := r.k.IPSet.Entries(name)
		if err != nil {
			return fmt.Errorf("list members of set %s: %w", name, err)
		}
		isClusterIP := name == desired.SetNames(ipset.IPv4).ClusterIP || name == desired.SetNames(ipset.IPv6).ClusterIP
		for _, e := range es {
			m.entries[desired.SetEntry{Set: name, Entry: e}] = struct{}{}
			if isClusterIP {
				clusterIPs[string(e)] = struct{}{}
			}
		}
	}
	vss, err := r.k.IPVS.VirtualServers()
	if err != nil {
		return fmt.Errorf("list virtual servers: %w", err)
	}
	for _, v := range vss {
		if !owned(v.Key, m.bound, clusterIPs, wanted, r.opts.ExcludeCIDRs) {
			continue
		}
		rss, err := r.k.IPVS.RealServers(v.Key)
		if errors.Is(err, ipvs.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("list real servers of %s: %w", v.Key, err)
		}
		st := &vsState{vs: v, rs: make(map[netip.AddrPort]int, len(rss))}
		for _, rs := range rss {
			st.rs[rs.AddrPort()] = rs.Weight
		}
		m.vs[v.Key] = st
	}
	for dk := range m.draining {
		if st, ok := m.vs[dk.vs]; !ok || st.rs[dk.rs] != 0 {
			delete(m.draining, dk)
		}
	}
	m.fresh = true
	klog.FromContext(ctx).V(2).Info("Read kernel state", "virtualServers", len(m.vs), "addresses", len(m.bound), "setMembers", len(m.entries))
	return nil
}

func owned(k ipvs.Key, bound map[netip.Addr]struct{}, clusterIPs map[string]struct{}, wanted map[ipvs.Key][]owner, exclude []netip.Prefix) bool {
	if excluded(k.Address, exclude) {
		return false
	}
	if _, ok := bound[k.Address]; ok {
		return true
	}
	if _, ok := clusterIPs[protoEntry(k)]; ok {
		return true
	}
	_, ok := wanted[k]
	return ok
}

// Stats counts what the Reconciler believes it programmed, for metrics.
type Stats struct {
	VirtualServers, RealServers, Draining, Addresses, SetMembers int
}

// Stats returns counts of the owned objects in the model; it costs one pass over it.
func (r *Reconciler) Stats() Stats {
	s := Stats{VirtualServers: len(r.m.vs), Draining: len(r.m.draining), Addresses: len(r.m.bound), SetMembers: len(r.m.entries)}
	for _, v := range r.m.vs {
		s.RealServers += len(v.rs)
	}
	return s
}

// equalRules compares two rulesets, ignoring the order of chains and of jumps.
func equalRules(a, b netfilter.Ruleset) bool {
	if len(a.Chains) != len(b.Chains) || len(a.Jumps) != len(b.Jumps) {
		return false
	}
	chains := func(rs netfilter.Ruleset) []netfilter.Chain {
		c := slices.Clone(rs.Chains)
		slices.SortFunc(c, func(x, y netfilter.Chain) int { return strings.Compare(x.Table+" "+x.Name, y.Table+" "+y.Name) })
		return c
	}
	jumps := func(rs netfilter.Ruleset) []netfilter.Jump {
		j := slices.Clone(rs.Jumps)
		slices.SortFunc(j, func(x, y netfilter.Jump) int {
			return strings.Compare(x.Table+" "+x.From+" "+x.To+" "+x.Match, y.Table+" "+y.From+" "+y.To+" "+y.Match)
		})
		return j
	}
	eqChain := func(x, y netfilter.Chain) bool {
		return x.Table == y.Table && x.Name == y.Name && slices.Equal(x.Rules, y.Rules)
	}
	return slices.EqualFunc(chains(a), chains(b), eqChain) && slices.Equal(jumps(a), jumps(b))
}
