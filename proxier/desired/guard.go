package desired

// The guard rails (CVE-2020-8554 and kin). Anyone who may create a Service may write its
// spec.externalIPs, and whoever updates its status may write status.loadBalancer.ingress;
// IPVS then answers for those addresses on this node, and every VIP is bound to the dummy
// link. Without a check, a Service could take the API server's address (the node's own
// traffic to it, this proxier's included, would go to the Service's pods: kubevs would
// never even see the Service deleted), a node address, another Service's ClusterIP, or an
// address no Service should ever be: loopback, link-local, multicast. So, whatever the
// allow-lists say, an externalIP or LoadBalancer ingress IP is refused when it is:
//
//	a special address    unspecified, loopback, link-local, multicast, 255.255.255.255
//	the API server's     Reserved.APIServers (the kubeconfig host, default/kubernetes slices)
//	a node address       Node.Addresses (InternalIP, ExternalIP) and Reserved.NodeAddresses
//	a pod address        inside Options.ClusterCIDRs or Reserved.PodCIDRs
//	a Service address    inside Reserved.ServiceCIDRs, or the ClusterIP of any Service
//
// NodePort addresses are node addresses by definition, and loopback ones are an explicit
// choice (see rules.go): of the rules above only those that cannot be meant hold for them.
// A NodePort address that is unspecified, link-local, multicast or broadcast, or lies in a
// pod or Service CIDR, serves no NodePort (nodePortAddresses drops it); a NodePort whose
// address and port are the API server's is refused for that Service.
//
// Each refusal skips that address only (the rest of the Service is served) and is a
// SkipError with its own Reason (the metric label), the refused address and an Event
// reason, so the daemon can tell the Service's author.

import (
	"net/netip"
	"slices"
)

// Reserved are the addresses no Service may take as an externalIP, a LoadBalancer ingress
// IP or a NodePort (see the rules above). The zero value reserves only the special
// addresses, the Node's own addresses and Options.ClusterCIDRs.
type Reserved struct {
	// APIServers are the API server's endpoints: the host of the kubeconfig the proxier
	// uses, and the addresses and ports of the default/kubernetes EndpointSlices.
	APIServers []netip.AddrPort
	// NodeAddresses are the host's own addresses (of its links), beside Node.Addresses.
	NodeAddresses []netip.Addr
	// PodCIDRs are the pod networks beside Options.ClusterCIDRs (the Node's podCIDRs).
	PodCIDRs []netip.Prefix
	// ServiceCIDRs are the ranges ClusterIPs are allocated from.
	ServiceCIDRs []netip.Prefix
	// ClusterIPs tells whether an address is the ClusterIP of some Service (nil: none is
	// known). The daemon indexes every Service it knows.
	ClusterIPs AddrSet
}

// AddrSet is a set of addresses.
type AddrSet interface {
	Has(netip.Addr) bool
}

// Equal reports whether r and o reserve the same addresses; ClusterIPs, an index that
// follows the Services, is not compared.
func (r Reserved) Equal(o Reserved) bool {
	return slices.Equal(r.APIServers, o.APIServers) && slices.Equal(r.NodeAddresses, o.NodeAddresses) &&
		slices.Equal(r.PodCIDRs, o.PodCIDRs) && slices.Equal(r.ServiceCIDRs, o.ServiceCIDRs)
}

// The Kubernetes Event reasons of refusals (SkipError.Event).
const (
	EventExternalIPRefused     = "ExternalIPRefused"
	EventLoadBalancerIPRefused = "LoadBalancerIPRefused"
	EventNodePortRefused       = "NodePortRefused"
)

// specialAddress names the class of an address no Service may take, or "".
func specialAddress(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "an unspecified address"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case a.IsMulticast():
		return "a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	}
	return ""
}

// reservedRule returns why a (an externalIP or LoadBalancer ingress IP) must not be
// served: the Reason and the rule in words, or "" when it may be.
func (c *serviceComputation) reservedRule(a netip.Addr) (Reason, string) {
	r := &c.opts.Reserved
	if s := specialAddress(a); s != "" {
		return ReasonRefusedSpecial, "it is " + s
	}
	if slices.ContainsFunc(r.APIServers, func(ap netip.AddrPort) bool { return ap.Addr() == a }) {
		return ReasonRefusedAPIServer, "it is the API server's address"
	}
	if slices.Contains(c.node.Addresses, a) || slices.Contains(r.NodeAddresses, a) {
		return ReasonRefusedNodeAddress, "it is an address of the node"
	}
	if inAny(c.opts.ClusterCIDRs, a) || inAny(r.PodCIDRs, a) {
		return ReasonRefusedPodCIDR, "it is inside the pod CIDRs"
	}
	if inAny(r.ServiceCIDRs, a) {
		return ReasonRefusedServiceCIDR, "it is inside the Service CIDRs"
	}
	if r.ClusterIPs != nil && r.ClusterIPs.Has(a) {
		return ReasonRefusedClusterIP, "it is the ClusterIP of a Service"
	}
	return "", ""
}

// nodePortAllowed reports whether a node address may serve NodePorts (see the rules above).
func nodePortAllowed(opts Options, a netip.Addr) bool {
	if s := specialAddress(a); s != "" && !a.IsLoopback() {
		return false
	}
	return !inAny(opts.ClusterCIDRs, a) && !inAny(opts.Reserved.PodCIDRs, a) && !inAny(opts.Reserved.ServiceCIDRs, a)
}

// RefusedNodePortAddresses returns the addresses of opts.NodePortAddresses that serve no
// NodePort (see nodePortAllowed), so the caller can log them once per change of options.
func RefusedNodePortAddresses(opts Options) []netip.Addr {
	var out []netip.Addr
	for _, a := range opts.NodePortAddresses {
		if !nodePortAllowed(opts, a.Unmap()) {
			out = append(out, a)
		}
	}
	return out
}

// apiServerNodePort reports whether a TCP NodePort on a:port would take the API server's
// endpoint.
func apiServerNodePort(opts Options, a netip.Addr, port uint16) bool {
	return slices.Contains(opts.Reserved.APIServers, netip.AddrPortFrom(a, port))
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

// refuse records that the Service may not take addr: a SkipError with reason r naming the
// address, what it was for (kind) and the rule, reported on the Service as event.
func (c *serviceComputation) refuse(r Reason, event, kind string, addr netip.Addr, rule string) {
	c.errs = append(c.errs, &SkipError{Reason: r, Addr: addr, Event: event,
		Err: errorf("service %s: %s %s refused: %s", c.name, kind, addr, rule)})
}
