// Package derive turns the proxier's configuration and its Node object into the inputs of
// the pure desired state (desired.Options and desired.Node). The proxier daemon and
// `kubevs status` both call it, so the two always compute the same virtual servers.
//
// It is small on purpose: the kubevs CNI binary links it through `kubevs status`, so it
// imports no metrics, informers or kernel adapters; HostAddresses reads the node's
// addresses through the standard library only.
package derive

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/link"
)

// Options derives desired.Options from the configuration c, the Node (nil when unknown) and
// the addresses of the host's links (HostAddresses; nil when unknown). The IP families are
// those of the cluster CIDRs, else of the Node's pod CIDRs, else IPv4 only.
// NodePortAddresses are the host addresses inside c.NodePortAddresses
// (desired.NodePortAddressesIn), and only those (OnlyNodePortAddresses, also when none
// matches); ExternalIPAllowedCIDRs, DenyAllExternalIPs and LoadBalancerIngressAllowedCIDRs
// are c's. Of the Reserved addresses it fills those it knows: the host's addresses, the
// Node's podCIDRs and c.ServiceCIDRs; the caller adds the API server's endpoints
// (APIServers) and the ClusterIP index (ClusterIPIndex).
func Options(c *config.Configuration, node *v1.Node, hostAddrs []netip.Addr) desired.Options {
	o := desired.Options{
		ClusterCIDRs:                    config.ParsedCIDRs(c.ClusterCIDRs),
		MasqueradeAll:                   c.MasqueradeAll,
		Scheduler:                       c.Scheduler,
		StrictARP:                       c.IPVS.StrictARPEnabled(),
		ExternalIPAllowedCIDRs:          config.ParsedCIDRs(c.ExternalIPAllowedCIDRs),
		DenyAllExternalIPs:              c.DenyAllExternalIPs,
		LoadBalancerIngressAllowedCIDRs: config.ParsedCIDRs(c.LoadBalancerIngressAllowedCIDRs),
	}
	o.Reserved.ServiceCIDRs = config.ParsedCIDRs(c.ServiceCIDRs)
	if node != nil {
		o.Reserved.PodCIDRs = config.ParsedCIDRs(node.Spec.PodCIDRs)
	}
	// Link-local addresses are left out: no Service may take one anyway (a special address),
	// and each pod's host-side veth brings its own fe80:: address, so with them every pod
	// started or deleted changed the Options, and the next full sync rewrote the fixed rules
	// and recomputed every Service.
	o.Reserved.NodeAddresses = sortedUnique(slices.DeleteFunc(slices.Clone(hostAddrs), netip.Addr.IsLinkLocalUnicast))
	if cidrs := config.ParsedCIDRs(c.NodePortAddresses); len(cidrs) > 0 {
		o.NodePortAddresses = desired.NodePortAddressesIn(cidrs, hostAddrs)
		o.OnlyNodePortAddresses = true // matching no address means no NodePort
	}
	cidrs := o.ClusterCIDRs
	if len(cidrs) == 0 && node != nil {
		cidrs = config.ParsedCIDRs(node.Spec.PodCIDRs)
	}
	for _, p := range cidrs {
		f := ipset.IPv4
		if p.Addr().Is6() {
			f = ipset.IPv6
		}
		if !slices.Contains(o.Families, f) {
			o.Families = append(o.Families, f)
		}
	}
	slices.Sort(o.Families) // "inet" < "inet6"
	return o
}

// NeedsHostAddresses reports whether the NodePort addresses depend on the host's addresses
// for c, so callers watch them for changes only then. (The guard rails use them always:
// callers pass them to Options whenever they can read them.)
func NeedsHostAddresses(c *config.Configuration) bool { return len(c.NodePortAddresses) > 0 }

// Node is what desired.ComputeService needs of the Node n (nil: only its name): its
// labels, topology zone and internal and external addresses.
func Node(name string, n *v1.Node) desired.Node {
	out := desired.Node{Name: name}
	if n == nil {
		return out
	}
	out.Labels = n.Labels
	out.Zone = n.Labels[v1.LabelTopologyZone]
	for _, a := range n.Status.Addresses {
		if a.Type != v1.NodeInternalIP && a.Type != v1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			out.Addresses = append(out.Addresses, ip.Unmap())
		}
	}
	return out
}

// Equal reports whether two derived Options are the same, so a caller knows when the
// fixed rules and every Service must be recomputed. Slices compare in order (Options
// returns them in a stable order).
func Equal(a, b desired.Options) bool {
	return slices.Equal(a.ClusterCIDRs, b.ClusterCIDRs) && a.MasqueradeAll == b.MasqueradeAll &&
		a.Scheduler == b.Scheduler && slices.Equal(a.Families, b.Families) && a.StrictARP == b.StrictARP &&
		slices.Equal(a.NodePortAddresses, b.NodePortAddresses) && a.OnlyNodePortAddresses == b.OnlyNodePortAddresses &&
		slices.Equal(a.ExternalIPAllowedCIDRs, b.ExternalIPAllowedCIDRs) && a.DenyAllExternalIPs == b.DenyAllExternalIPs &&
		slices.Equal(a.LoadBalancerIngressAllowedCIDRs, b.LoadBalancerIngressAllowedCIDRs) && a.Reserved.Equal(b.Reserved)
}

// sortedUnique returns the unmapped addresses of addrs, sorted, without duplicates (nil for none).
func sortedUnique(addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, a.Unmap())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// HostAddresses lists the addresses of the host's links, except those on kubevs's dummy
// link (link.DefaultDummy holds Service VIPs, not node addresses), in one address dump. It
// only reads.
func HostAddresses() ([]netip.Addr, error) {
	return link.HostAddresses(link.DefaultDummy)
}

// KnownNode returns the Node to compute with when the Node cur (nil: absent) may be
// missing or recreated: cur while it has addresses; otherwise the last Node seen with
// addresses (last, nil if none), so the NodePorts it placed on its addresses stay until
// the Node shows addresses again. When cur exists without addresses, the result is a copy
// of cur with last's addresses. kept reports that last's addresses were used; the caller
// logs it. Neither argument is modified.
func KnownNode(last, cur *v1.Node) (node *v1.Node, kept bool) {
	if hasNodeAddress(cur) || !hasNodeAddress(last) {
		return cur, false
	}
	if cur == nil {
		return last, true
	}
	n := cur.DeepCopy()
	n.Status.Addresses = slices.Clone(last.Status.Addresses)
	return n, true
}

// hasNodeAddress reports whether n (may be nil) has an internal or external address, the
// ones Node uses.
func hasNodeAddress(n *v1.Node) bool {
	if n == nil {
		return false
	}
	for _, a := range n.Status.Addresses {
		if a.Type == v1.NodeInternalIP || a.Type == v1.NodeExternalIP {
			return true
		}
	}
	return false
}
