package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
)

// The converge functions make one object of the kernel match what the model says is
// wanted, using the model as the picture of the kernel. They tolerate a model that lags
// behind the kernel (ErrExist on an add, ErrNotFound on a delete), so a retry after a
// failure converges even before a Resync re-reads the kernel. Every failure is returned
// naming its object, and marks the model as no longer fresh.

// converge makes the touched objects match the model's wants. It brings in what is wanted
// first (set members, then virtual and real servers, then addresses, so a VIP answers only
// once its virtual servers are ready), then takes away what is no longer wanted: virtual
// servers first, then set members, then addresses. That order matters for crashes and
// retries: the bound address and the set members are what mark a virtual server as
// kubevs's (see load), so they come before the virtual server and go only after it. A
// proxier killed at any point leaves no virtual server its successor would not own
// (TestKillBetweenVirtualServerAndItsMarkLeaksNothing), and a failed delete is retried.
func (r *Reconciler) converge(ctx context.Context, t *touched) error {
	r.noteDirty(t)
	var errs []error
	var tl tally
	errs = append(errs, r.convergeEntries(ctx, t.entries, true))
	for _, k := range t.vs {
		if _, _, ok := r.m.want(k); ok {
			errs = append(errs, r.isolate(ctx, k, &tl))
		}
	}
	errs = append(errs, r.convergeVIPs(ctx, t.vips, true))
	for _, k := range t.vs {
		if _, _, ok := r.m.want(k); !ok {
			errs = append(errs, r.isolate(ctx, k, &tl))
		}
	}
	errs = append(errs, r.convergeEntries(ctx, t.entries, false))
	errs = append(errs, r.convergeVIPs(ctx, t.vips, false))
	errs = append(errs, tl.wholesale())
	err := errors.Join(errs...)
	if err != nil {
		r.m.fresh = false
	}
	r.noteFailed(err)
	return err
}

// convergeVS makes virtual server k and its real servers match the desired state.
func (r *Reconciler) convergeVS(ctx context.Context, k ipvs.Key) error {
	logger := klog.FromContext(ctx)
	want, name, ok := r.m.want(k)
	have := r.m.vs[k]
	if !ok {
		if have == nil {
			return nil
		}
		logger.V(4).Info("Deleting virtual server", "virtualServer", k)
		if err := r.k.IPVS.DeleteVirtualServer(k); err != nil && !errors.Is(err, ipvs.ErrNotFound) {
			return failed(ReasonDeleteVirtualServer, fmt.Errorf("delete virtual server %s: %w", k, err))
		}
		delete(r.m.vs, k)
		for _, e := range have.rs {
			delete(r.m.draining, drainKey{k, e.AddrPort()})
		}
		if k.Protocol == ipvs.UDP {
			r.clearVIP(k)
		}
		return nil
	}
	if have == nil {
		logger.V(4).Info("Adding virtual server", "virtualServer", want.VirtualServer, "service", name)
		err := r.k.IPVS.AddVirtualServer(want.VirtualServer)
		switch {
		case err == nil:
			have = &vsState{settings: settingsOf(want.VirtualServer), rs: make(rsList, 0, len(want.RealServers))}
			r.m.vs[k] = have
		case errors.Is(err, ipvs.ErrExist):
			// The model lagged behind the kernel: learn what is there and go on.
			if have, err = r.readVS(k); err != nil {
				return failed(ReasonAddVirtualServer, fmt.Errorf("read virtual server %s of service %s: %w", k, name, err))
			}
		default:
			return failed(ReasonAddVirtualServer, fmt.Errorf("add virtual server %s of service %s: %w", want.VirtualServer, name, err))
		}
	}
	if !have.same(want.VirtualServer) {
		logger.V(4).Info("Updating virtual server", "virtualServer", want.VirtualServer, "service", name)
		if err := r.k.IPVS.UpdateVirtualServer(want.VirtualServer); err != nil {
			if errors.Is(err, ipvs.ErrNotFound) {
				delete(r.m.vs, k)
			}
			return failed(ReasonUpdateVirtualServer, fmt.Errorf("update virtual server %s of service %s: %w", want.VirtualServer, name, err))
		}
		have.settings = settingsOf(want.VirtualServer)
	}
	return failed(ReasonRealServers, r.convergeRealServers(ctx, k, name.String(), have, want.RealServers))
}

// convergeRealServers adds and restores the wanted real servers and drains (TCP, SCTP) or
// deletes (UDP) the others.
func (r *Reconciler) convergeRealServers(ctx context.Context, k ipvs.Key, svc string, have *vsState, want []desired.RealServer) error {
	var errs []error
	hadNone := len(have.rs) == 0
	wanted := make(map[netip.AddrPort]struct{}, len(want))
	batch, canBatch := r.k.IPVS.(ipvs.RealServerAdder)
	var adds []ipvs.RealServer // new to the model: added together where the adapter can
	for _, rs := range want {
		ap := rs.AddrPort()
		wanted[ap] = struct{}{}
		w, ok := have.rs.get(ap)
		if ok && w == rs.Weight() {
			continue
		}
		if !ok && canBatch {
			adds = append(adds, rs.IPVS())
			continue
		}
		if err := r.putRealServer(k, rs.IPVS(), ok); err != nil {
			errs = append(errs, fmt.Errorf("set real server %s of %s (service %s): %w", ap, k, svc, err))
			continue
		}
		have.setRS(ap, rs.Weight())
		delete(r.m.draining, drainKey{k, ap})
	}
	if len(adds) > 0 {
		added := make([]ipvs.RealServer, 0, len(adds))
		for i, err := range batch.AddRealServers(k, adds) {
			rs := adds[i]
			if errors.Is(err, ipvs.ErrExist) { // the model lagged: set its weight
				err = r.k.IPVS.UpdateRealServer(k, rs)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("set real server %s of %s (service %s): %w", rs.AddrPort(), k, svc, err))
				continue
			}
			added = append(added, rs)
			delete(r.m.draining, drainKey{k, rs.AddrPort()})
		}
		have.addRS(added)
	}
	var gone []desired.RealServer // in order
	for _, e := range have.rs {
		if _, ok := wanted[e.AddrPort()]; !ok {
			gone = append(gone, e)
		}
	}
	for _, e := range gone {
		if err := r.retire(ctx, k, have, e.AddrPort(), e.Weight()); err != nil {
			errs = append(errs, fmt.Errorf("retire real server %s of %s (service %s): %w", e.AddrPort(), k, svc, err))
		}
	}
	if k.Protocol == ipvs.UDP && hadNone && len(want) > 0 {
		// Flows that reached the VIP while it had no endpoint would stick to their dead
		// end; remove them now that the Service can answer. Not the flows that already
		// reach one of its endpoints: a virtual server new to kubevs may have been served
		// by someone else until now (kube-proxy's iptables or nftables DNAT before a
		// takeover), and deleting its flows would move each to another endpoint.
		r.queueFlows(unservedFlows(k, want))
	}
	have.share(want)
	return errors.Join(errs...)
}

// putRealServer adds rs (exists false) or sets its weight, recovering from a lagging model.
func (r *Reconciler) putRealServer(k ipvs.Key, rs ipvs.RealServer, exists bool) error {
	if exists {
		err := r.k.IPVS.UpdateRealServer(k, rs)
		if !errors.Is(err, ipvs.ErrNotFound) {
			return err
		}
	}
	err := r.k.IPVS.AddRealServer(k, rs)
	if errors.Is(err, ipvs.ErrExist) {
		return r.k.IPVS.UpdateRealServer(k, rs)
	}
	return err
}

// retire takes away a real server no Service wants: UDP ones at once, with their flows,
// and every one with Options.NoDrain; others go to weight 0 and are deleted by FinishDrains.
func (r *Reconciler) retire(ctx context.Context, k ipvs.Key, have *vsState, ap netip.AddrPort, weight int32) error {
	dk := drainKey{k, ap}
	if k.Protocol == ipvs.UDP || r.opts.NoDrain {
		return r.deleteRealServer(ctx, k, have, ap)
	}
	if weight != 0 {
		klog.FromContext(ctx).V(4).Info("Draining real server", "virtualServer", k, "realServer", ap)
		err := r.k.IPVS.UpdateRealServer(k, ipvs.RealServer{Address: ap.Addr(), Port: ap.Port(), Weight: 0})
		if errors.Is(err, ipvs.ErrNotFound) {
			have.delRS(ap)
			delete(r.m.draining, dk)
			return nil
		}
		if err != nil {
			return err
		}
		have.setRS(ap, 0)
	}
	if _, ok := r.m.draining[dk]; !ok {
		r.m.draining[dk] = r.drainDeadline(ctx, dk)
	}
	return nil
}

// deleteRealServer deletes ap from k now, and the UDP flows it answered.
func (r *Reconciler) deleteRealServer(ctx context.Context, k ipvs.Key, have *vsState, ap netip.AddrPort) error {
	klog.FromContext(ctx).V(4).Info("Deleting real server", "virtualServer", k, "realServer", ap)
	err := r.k.IPVS.DeleteRealServer(k, ipvs.RealServer{Address: ap.Addr(), Port: ap.Port()})
	if err != nil && !errors.Is(err, ipvs.ErrNotFound) {
		return err
	}
	have.delRS(ap)
	delete(r.m.draining, drainKey{k, ap})
	if k.Protocol == ipvs.UDP {
		r.queueFlows(udpEndpointFlows(k, ap))
	}
	return nil
}

// clearVIP queues the deletion of the UDP flows whose original destination is the
// virtual server k.
func (r *Reconciler) clearVIP(k ipvs.Key) { r.queueFlows(vipFlows(k)) }

// readVS reads one virtual server and its real servers from the kernel into the model.
func (r *Reconciler) readVS(k ipvs.Key) (*vsState, error) {
	vss, err := r.k.IPVS.VirtualServers()
	if err != nil {
		return nil, err
	}
	st := &vsState{}
	found := false
	for _, v := range vss {
		if v.Key == k {
			st.settings, found = settingsOf(v), true
		}
	}
	if !found {
		return nil, fmt.Errorf("virtual server %s: %w", k, ipvs.ErrNotFound)
	}
	rss, err := r.k.IPVS.RealServers(k)
	if err != nil {
		return nil, err
	}
	st.rs = rsListOf(rss)
	r.m.vs[k] = st
	return st, nil
}

// convergeVIPs binds (add) or unbinds (!add) the addresses of vips that need it.
func (r *Reconciler) convergeVIPs(ctx context.Context, vips []netip.Addr, add bool) error {
	var errs []error
	dummy := r.global.Dummy
	batch, canBatch := r.k.Link.(link.AddressAdder)
	var adds []netip.Addr // bound together where the adapter can
	for _, a := range vips {
		want, have := r.m.vips.state(a)
		switch {
		case add && want && !have:
			klog.FromContext(ctx).V(4).Info("Binding address", "address", a, "link", dummy)
			if canBatch {
				adds = append(adds, a)
				continue
			}
			if err := r.k.Link.AddAddress(dummy, a); err != nil && !errors.Is(err, link.ErrExist) {
				errs = append(errs, fmt.Errorf("bind %s to %s: %w", a, dummy, err))
				continue
			}
			r.m.vips.hold(a, true)
		case !add && !want && have:
			klog.FromContext(ctx).V(4).Info("Unbinding address", "address", a, "link", dummy)
			if err := r.k.Link.DeleteAddress(dummy, a); err != nil && !errors.Is(err, link.ErrNotFound) {
				errs = append(errs, fmt.Errorf("unbind %s from %s: %w", a, dummy, err))
				continue
			}
			r.m.vips.hold(a, false)
		}
	}
	if len(adds) > 0 {
		for i, err := range batch.AddAddresses(dummy, adds) {
			if err != nil && !errors.Is(err, link.ErrExist) {
				errs = append(errs, fmt.Errorf("bind %s to %s: %w", adds[i], dummy, err))
				continue
			}
			r.m.vips.hold(adds[i], true)
		}
	}
	return errors.Join(errs...)
}

// convergeEntries adds (add) or deletes (!add) the members of entries that need it, one
// batch per set.
func (r *Reconciler) convergeEntries(ctx context.Context, entries []desired.SetEntry, add bool) error {
	batches := map[string][]desired.SetEntry{}
	var order []string
	for _, e := range entries {
		want, have := r.m.entries.state(e)
		if (add && want && !have) || (!add && !want && have) {
			if batches[e.Set] == nil {
				order = append(order, e.Set)
			}
			batches[e.Set] = append(batches[e.Set], e)
		}
	}
	var errs []error
	for _, set := range order {
		es := batches[set]
		members := make([]ipset.Entry, len(es))
		for i, e := range es {
			members[i] = e.Entry
		}
		verb := "add"
		f := r.k.IPSet.AddEntries
		if !add {
			verb, f = "delete", r.k.IPSet.DeleteEntries
		}
		klog.FromContext(ctx).V(4).Info("Updating set", "set", set, "op", verb, "members", len(members))
		if err := f(set, members...); err != nil {
			errs = append(errs, fmt.Errorf("%s %d members of set %s (first %s): %w", verb, len(members), set, members[0], err))
			continue
		}
		for _, e := range es {
			r.m.entries.hold(e, add)
		}
	}
	return errors.Join(errs...)
}
