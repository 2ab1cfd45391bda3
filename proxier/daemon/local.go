package daemon

// Local pods: the CNI plugin registers every pod it attaches. A registered IP makes the
// pod's endpoints local (their hairpin entries go into KUBE-LOOP-BACK) even before the
// EndpointSlice names this node. A registration change recomputes only the Services with
// an endpoint on the IPs that came or went; an IP that went away also loses its conntrack
// entries (the next sync has the reconciler delete them, retried until done), so no flow
// keeps pointing at a deleted pod. Only IPs inside the Node's podCIDRs are accepted
// (validPodIP), so registering and unregistering cannot make the proxier delete the flows
// of an address that is not one of this node's pods.

import (
	"context"
	"fmt"
	"net/netip"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// localIPs returns the IPs of the registered pods: a copy of the store's own index, so a
// change costs the number of pod IPs, never a walk over every registration.
func localIPs(store *nodeapi.Store) desired.PodSet {
	return desired.PodSet(store.IPs())
}

// validPodIP is the node API's IP validator: once the Node's spec.podCIDRs are known, a
// registered IP must be inside one of them. Before the Node is seen (or when it has no
// podCIDRs, as with a network plugin that assigns its own) every unicast IP is accepted.
func (d *Daemon) validPodIP(ip netip.Addr) error {
	n := d.tracker.Node()
	if n == nil || len(n.Spec.PodCIDRs) == 0 {
		return nil
	}
	ip = ip.Unmap()
	for _, c := range n.Spec.PodCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("%s is outside the podCIDRs %v of node %s", ip, n.Spec.PodCIDRs, n.Name)
}

// onRegistrations runs after every change of the registration store.
func (d *Daemon) onRegistrations(ctx context.Context) {
	now := localIPs(d.store)
	d.mu.Lock()
	old := d.localIPs
	d.localIPs = now
	changed := map[netip.Addr]bool{}
	removed := false
	for ip := range now {
		if _, ok := old[ip]; !ok {
			changed[ip] = true
		}
	}
	for ip := range old {
		if _, ok := now[ip]; !ok {
			changed[ip] = true
			removed = true
			d.flush = append(d.flush, ip)
		}
	}
	d.mu.Unlock()
	if len(changed) == 0 {
		return
	}
	names := d.tracker.ServicesWithEndpoints(func(a netip.Addr) bool { return changed[a] })
	klog.FromContext(ctx).V(2).Info("Local pods changed", "ips", len(changed), "services", len(names))
	d.tracker.Touch(names...) // runs a sync when names is not empty
	if removed {
		d.runner.Run() // the conntrack flush, also when no Service is affected
	}
}
