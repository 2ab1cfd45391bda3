package reconcile

// Conntrack deletes are queued: a sync queues the filters of the flows that would keep
// traffic on a dead end (UDP flows to a removed endpoint, to a VIP that had none or to an
// endpoint it no longer has, the flows of a pod that went away), and deletes them all at its end in one call, which costs
// one dump of each family's table instead of one per filter. A filter whose delete failed
// stays queued and is tried again at the next sync (and the failure fails this one, so the
// caller retries), until it is done.

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/conntrack"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// queueFlows queues the deletion of the flows f selects.
func (r *Reconciler) queueFlows(f conntrack.Filter) {
	if r.k.Conntrack == nil {
		return
	}
	if r.ctQueue == nil {
		r.ctQueue = map[conntrack.Filter]struct{}{}
	}
	r.ctQueue[f] = struct{}{}
}

// DeletePodFlows queues the deletion of every flow to or from ips (pods that went away);
// the next Apply or Resync deletes them, with the other queued flows, and retries until
// done.
func (r *Reconciler) DeletePodFlows(ips ...netip.Addr) {
	for _, ip := range ips {
		r.queueFlows(conntrack.Filter{Match: conntrack.Addr, Addr: ip.Unmap()})
	}
}

// PendingFlowDeletes reports how many filters wait for their flows to be deleted.
func (r *Reconciler) PendingFlowDeletes() int { return len(r.ctQueue) }

// flushFlows deletes the flows of every queued filter in one call. On success the queue
// is empty; on failure every filter stays queued (deleting twice is harmless).
func (r *Reconciler) flushFlows(ctx context.Context) error {
	if len(r.ctQueue) == 0 {
		return nil
	}
	fs := make([]conntrack.Filter, 0, len(r.ctQueue))
	for f := range r.ctQueue {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b conntrack.Filter) int { return strings.Compare(a.String(), b.String()) })
	n, err := r.k.Conntrack.Delete(fs)
	if err != nil {
		return fmt.Errorf("delete conntrack flows of %d filters (kept for the next sync): %w", len(fs), err)
	}
	clear(r.ctQueue)
	klog.FromContext(ctx).V(2).Info("Deleted conntrack flows", "filters", len(fs), "flows", n)
	return nil
}

// udpEndpointFlows selects the UDP flows to the virtual server k answered by its real server
// ap: not the flows of another Service that shares the endpoint (a firewall-mark virtual
// server, with no address, selects every flow ap answered).
func udpEndpointFlows(k ipvs.Key, ap netip.AddrPort) conntrack.Filter {
	f := conntrack.Filter{Match: conntrack.ReplySrc, Proto: ipvs.UDP, Addr: ap.Addr(), Port: ap.Port()}
	if k.Address.IsValid() {
		f.Via = netip.AddrPortFrom(k.Address, k.Port)
	}
	return f
}

// vipFlows selects the flows to the virtual server k.
func vipFlows(k ipvs.Key) conntrack.Filter {
	return conntrack.Filter{Match: conntrack.OrigDst, Proto: k.Protocol, Addr: k.Address, Port: k.Port}
}

// unservedFlows selects the flows to the virtual server k that none of its real servers rs
// answers.
func unservedFlows(k ipvs.Key, rs []desired.RealServer) conntrack.Filter {
	keep := make([]netip.AddrPort, len(rs))
	for i, r := range rs {
		keep[i] = r.AddrPort()
	}
	return conntrack.Filter{Match: conntrack.Unserved, Proto: k.Protocol, Addr: k.Address, Port: k.Port, Keep: conntrack.KeepList(keep)}
}
