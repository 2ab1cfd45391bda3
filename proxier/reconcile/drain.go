package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// FinishDrains deletes the draining real servers whose connections have all ended or whose
// drain time is over. It reads only the virtual servers that have draining real servers.
func (r *Reconciler) FinishDrains(ctx context.Context) error {
	defer r.saveDrains(ctx)
	if len(r.m.draining) == 0 {
		return nil
	}
	byVS := map[ipvs.Key][]netip.AddrPort{}
	for dk := range r.m.draining {
		byVS[dk.vs] = append(byVS[dk.vs], dk.rs)
	}
	keys := make([]ipvs.Key, 0, len(byVS))
	for k := range byVS {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, desired.CompareKeys)
	r.noteDirty(&touched{vs: keys})
	now := r.opts.Now()
	var errs []error
	for _, k := range keys {
		errs = append(errs, r.m.countWrites(k, func() error { return r.finishDrainsOf(ctx, k, byVS[k], now) }))
	}
	err := errors.Join(errs...)
	if err != nil {
		r.m.fresh = false
	}
	r.noteFailed(err)
	return err
}

// finishDrainsOf deletes the real servers aps of k whose drain is over (FinishDrains).
func (r *Reconciler) finishDrainsOf(ctx context.Context, k ipvs.Key, aps []netip.AddrPort, now time.Time) error {
	slices.SortFunc(aps, netip.AddrPort.Compare)
	have := r.m.vs[k]
	if have == nil {
		for _, ap := range aps {
			delete(r.m.draining, drainKey{k, ap})
		}
		return nil
	}
	rss, err := r.k.IPVS.RealServers(k)
	if errors.Is(err, ipvs.ErrNotFound) {
		delete(r.m.vs, k)
		for _, ap := range aps {
			delete(r.m.draining, drainKey{k, ap})
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("list real servers of %s: %w", k, err)
	}
	conns := make(map[netip.AddrPort]int, len(rss))
	for _, rs := range rss {
		conns[rs.AddrPort()] = int(rs.ActiveConns) + int(rs.InactiveConns)
	}
	var errs []error
	for _, ap := range aps {
		n, present := conns[ap]
		if present && n > 0 && now.Before(r.m.draining[drainKey{k, ap}]) {
			continue
		}
		if present && n > 0 {
			klog.FromContext(ctx).V(2).Info("Drain time over, deleting real server with connections", "virtualServer", k, "realServer", ap, "connections", n)
		}
		if err := r.deleteRealServer(ctx, k, have, ap); err != nil {
			errs = append(errs, fmt.Errorf("delete drained real server %s of %s: %w", ap, k, err))
		}
	}
	if want, _, ok := r.m.want(k); ok {
		have.share(want.RealServers) // the last drain over, it may be in sync
	}
	return errors.Join(errs...)
}
