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
func (r *Reconciler) load(ctx context.Context, wanted map[ipvs.Key]owner, known map[ipvs.Key]*vsState) error {
	kr, err := readKernel(ctx, r.k, r.global.Dummy, func(k ipvs.Key, kr *kernelRead) bool {
		_, ok := known[k]
		return ok || owned(k, kr.vips, kr.marks, wanted, r.opts.ExcludeCIDRs)
	})
	if err != nil {
		vips, entries := newRefs[netip.Addr](), newRefs[desired.SetEntry]()
		vips.takeWants(r.m.vips)
		entries.takeWants(r.m.entries)
		r.m.vs, r.m.vips, r.m.entries = map[ipvs.Key]*vsState{}, vips, entries
		return err
	}
	r.adopt(ctx, kr, wanted, known)
	return nil
}

// kernelRead is what one read of the kernel found: the addresses on the dummy link, the
// members of the owned sets (and the marks they make), and virtual servers with their real
// servers.
type kernelRead struct {
	vips    *refs[netip.Addr] // what the kernel holds, until a model counts its wants in
	entries *refs[desired.SetEntry]
	marks   marks
	vs      map[ipvs.Key]*vsState
}

// readKernel reads the addresses of the link dummy, the members of the owned sets, and the
// virtual servers for which read returns true (every one when read is nil) with their real
// servers; a virtual server gone between the two dumps is left out. It uses nothing but k,
// so it runs without the Reconciler's lock when k's adapters are safe for concurrent use
// (the Linux ones and the fakes are). One address dump, one set list and one member dump
// per owned set present, one virtual server dump, and the real servers of all at once
// where the IPVS adapter can (ipvs.TableReader) and the table is small enough for it to pay
// (ipvs.TableMaxVirtualServers), else, and for each virtual server the table did not hold
// whole, one real server dump per virtual server read.
func readKernel(ctx context.Context, k Kernel, dummy string, read func(ipvs.Key, *kernelRead) bool) (*kernelRead, error) {
	kr := &kernelRead{vips: newRefs[netip.Addr](), entries: newRefs[desired.SetEntry](), marks: newMarks(), vs: map[ipvs.Key]*vsState{}}
	addrs, err := k.Link.Addresses(dummy)
	if err != nil && !errors.Is(err, link.ErrNotFound) {
		return nil, fmt.Errorf("list addresses of %s: %w", dummy, err)
	}
	for _, a := range addrs {
		kr.vips.hold(a.Unmap(), true)
	}
	names, err := k.IPSet.Sets()
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	for _, name := range desired.OwnedSets() {
		if !slices.Contains(names, name) {
			continue
		}
		es, err := k.IPSet.Entries(name)
		if err != nil {
			return nil, fmt.Errorf("list members of set %s: %w", name, err)
		}
		for _, e := range es {
			kr.entries.hold(desired.SetEntry{Set: name, Entry: e}, true)
			kr.marks.add(name, e)
		}
	}
	vss, err := k.IPVS.VirtualServers()
	if err != nil {
		return nil, fmt.Errorf("list virtual servers: %w", err)
	}
	var table map[ipvs.Key][]ipvs.RealServer
	if len(vss) <= ipvs.TableMaxVirtualServers {
		table = realServerTable(ctx, k.IPVS)
	}
	for _, v := range vss {
		if read != nil && !read(v.Key, kr) {
			continue
		}
		rss, ok := table[v.Key]
		if !ok {
			if rss, err = k.IPVS.RealServers(v.Key); errors.Is(err, ipvs.ErrNotFound) {
				continue
			} else if err != nil {
				return nil, fmt.Errorf("list real servers of %s: %w", v.Key, err)
			}
		}
		kr.vs[v.Key] = &vsState{settings: settingsOf(v), rs: rsListOf(rss)}
	}
	return kr, nil
}

// realServerTable reads the real servers of every virtual server at once when v can; nil
// (every virtual server is then dumped on its own) when it cannot or the read failed.
func realServerTable(ctx context.Context, v ipvs.Interface) map[ipvs.Key][]ipvs.RealServer {
	tr, ok := v.(ipvs.TableReader)
	if !ok {
		return nil
	}
	table, err := tr.RealServerTable()
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Cannot read the real servers at once; dumping each virtual server's", "err", err)
		return nil
	}
	return table
}

// adopt makes kr the model's picture of the kernel, keeping the virtual servers kubevs
// owns (see load) and the drains still valid; kr's maps become the model's, and take its
// wants.
func (r *Reconciler) adopt(ctx context.Context, kr *kernelRead, wanted map[ipvs.Key]owner, known map[ipvs.Key]*vsState) {
	m := &r.m
	kr.vips.takeWants(m.vips)
	kr.entries.takeWants(m.entries)
	m.vips, m.entries, m.vs = kr.vips, kr.entries, kr.vs
	for k := range m.vs {
		if _, ok := known[k]; !ok && !owned(k, kr.vips, kr.marks, wanted, r.opts.ExcludeCIDRs) {
			delete(m.vs, k)
		}
	}
	m.pruneDrains()
	m.fresh = true
	m.recount()
	klog.FromContext(ctx).V(2).Info("Read kernel state", "virtualServers", len(m.vs), "addresses", m.vips.len(), "setMembers", m.entries.len())
}

// Stats counts what the Reconciler believes it programmed, for metrics.
type Stats struct {
	VirtualServers, RealServers, Draining, Addresses, SetMembers int
}

// Stats returns counts of the owned objects in the model, in O(1).
func (r *Reconciler) Stats() Stats {
	return Stats{VirtualServers: len(r.m.vs), RealServers: r.m.realServers, Draining: len(r.m.draining),
		Addresses: r.m.vips.len(), SetMembers: r.m.entries.len()}
}
