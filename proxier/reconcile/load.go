package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
)

// load reads the owned state of the kernel into the model: the addresses on the dummy
// link, the members of the owned sets, and the owned virtual servers with their real
// servers. A virtual server is owned when its address is bound to the dummy link, or a set
// member marks it (see marks), or a Service wants it (wanted), or the
// previous model held it (known: kubevs created or adopted it, and a delete may have
// failed); never when its address is in ExcludeCIDRs. wanted and known may be nil.
func (r *Reconciler) load(ctx context.Context, wanted map[ipvs.Key][]owner, known map[ipvs.Key]*vsState) error {
	m := &r.m
	m.vs, m.bound, m.entries = map[ipvs.Key]*vsState{}, map[netip.Addr]struct{}{}, map[desired.SetEntry]struct{}{}
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
	mk := newMarks()
	for _, name := range desired.OwnedSets() {
		if !slices.Contains(names, name) {
			continue
		}
		es, err := r.k.IPSet.Entries(name)
		if err != nil {
			return fmt.Errorf("list members of set %s: %w", name, err)
		}
		for _, e := range es {
			m.entries[desired.SetEntry{Set: name, Entry: e}] = struct{}{}
			mk.add(name, e)
		}
	}
	vss, err := r.k.IPVS.VirtualServers()
	if err != nil {
		return fmt.Errorf("list virtual servers: %w", err)
	}
	for _, v := range vss {
		if _, ok := known[v.Key]; !ok && !owned(v.Key, m.bound, mk, wanted, r.opts.ExcludeCIDRs) {
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
