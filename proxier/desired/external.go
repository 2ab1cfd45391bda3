package desired

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// SourceRangesAnnotation is the older way to give loadBalancerSourceRanges (a
// comma-separated list); like kube-proxy, kubevs reads it when the field is empty.
const SourceRangesAnnotation = "service.beta.kubernetes.io/load-balancer-source-ranges"

// serviceComputation accumulates the state of one Service as ComputeService walks it.
type serviceComputation struct {
	opts       Options
	node       Node
	pods       LocalPods
	eps        []*Slice
	out        *Service
	name       string
	sched      string
	persistent bool
	timeout    uint32
	// The node-facing parts of the Service and its traffic policies.
	extLocal, intLocal bool
	extIPs, lbIPs      []netip.Addr
	ranges             []netip.Prefix
	// readyLocal holds the addresses of the ready local endpoints (nil until one is seen).
	readyLocal map[netip.Addr]struct{}
	errs       []error
}

// servicePort adds what one Service port needs in the family of cluster IP vip: its
// ClusterIP virtual server with the endpoints of internalTrafficPolicy, and the NodePort,
// externalIP and LoadBalancer ones of that family with those of externalTrafficPolicy.
func (c *serviceComputation) servicePort(sn SetNameList, vip netip.Addr, nodeIPs []netip.Addr, sp ServicePort) {
	proto, ok := protocol(sp.Protocol)
	if !ok {
		c.errs = append(c.errs, skipped(ReasonUnsupportedProtocol, "service %s: port %q: unsupported protocol %q", c.name, sp.Name, sp.Protocol))
		return
	}
	fam := familyOf(vip)
	cluster, localEps := pick(candidates(fam, sp, c.eps, &c.errs, c.name), c.node, c.pods, &c.readyLocal)
	internal, external := cluster, cluster
	if c.intLocal {
		internal = localEps
	}
	if c.extLocal {
		external = localEps
	}
	port := uint16(sp.Port)
	c.virtualServer(sn, vip, proto, port, internal)
	c.entry(sn.ClusterIP, ipPortEntry(vip, proto, port))
	if len(nodeIPs) > 0 && sp.NodePort > 0 && sp.NodePort <= 65535 {
		c.nodePort(sn, nodeIPs, proto, uint16(sp.NodePort), external)
	}
	for _, a := range c.extIPs {
		if familyOf(a) != fam {
			continue // served with the Service's cluster IP of that family, if any
		}
		c.virtualServer(sn, a, proto, port, external)
		c.bindUnlessNodeAddress(sn, a)
		set := sn.ExternalIP
		if c.extLocal {
			set = sn.ExternalIPLocal
		}
		c.entry(set, ipPortEntry(a, proto, port))
	}
	for _, a := range c.lbIPs {
		if familyOf(a) != fam {
			continue
		}
		c.virtualServer(sn, a, proto, port, external)
		c.bindUnlessNodeAddress(sn, a)
		c.loadBalancer(sn, a, proto, port)
	}
}

// virtualServer adds the virtual server addr:port with backends as real servers, and the
// loop-back members of the local ones.
func (c *serviceComputation) virtualServer(sn SetNameList, addr netip.Addr, proto ipvs.Protocol, port uint16, backends []endpoint) {
	vs := VirtualServer{VirtualServer: ipvs.VirtualServer{
		Key:        ipvs.Key{Address: addr, Protocol: proto, Port: port},
		Scheduler:  c.sched,
		Persistent: c.persistent,
		Timeout:    c.timeout,
	}}
	vs.RealServers = make([]RealServer, 0, len(backends))
	for _, ep := range backends {
		vs.RealServers = append(vs.RealServers, NewRealServer(netip.AddrPortFrom(ep.addr, ep.port), 1))
		if ep.local(c.node, c.pods) {
			c.entry(sn.LoopBack, loopBackEntry(ep.addr, proto, ep.port))
		}
	}
	c.out.VirtualServers = append(c.out.VirtualServers, vs)
}

func (c *serviceComputation) entry(set string, e ipset.Entry) {
	c.out.Entries = append(c.out.Entries, SetEntry{Set: set, Entry: e})
}

// bind asks for addr on the dummy link and in the VIPs set.
func (c *serviceComputation) bind(sn SetNameList, addr netip.Addr) {
	c.out.VIPs = append(c.out.VIPs, addr)
	c.entry(sn.VIPs, ipset.Entry(addr.String()))
}

// bindUnlessNodeAddress binds an externalIP or LoadBalancer IP, unless the node already
// owns it on another link (as kube-proxy does): binding it to the dummy link too would put
// it in the VIPs set, whose REJECT rule would then close every other port of the node
// address (sshd, the kubelet).
func (c *serviceComputation) bindUnlessNodeAddress(sn SetNameList, addr netip.Addr) {
	if !slices.Contains(c.node.Addresses, addr) {
		c.bind(sn, addr)
	}
}

// nodePort adds the NodePort virtual servers on nodeIPs and their set members.
func (c *serviceComputation) nodePort(sn SetNameList, nodeIPs []netip.Addr, proto ipvs.Protocol, port uint16, backends []endpoint) {
	extLocal := c.extLocal
	var kept []netip.Addr
	for _, a := range nodeIPs {
		if proto == ipvs.TCP && apiServerNodePort(c.opts, a, port) {
			c.refuse(ReasonRefusedAPIServer, EventNodePortRefused, "TCP node port "+strconv.Itoa(int(port))+" on", a, "it is the API server's endpoint")
			continue
		}
		kept = append(kept, a)
		c.virtualServer(sn, a, proto, port, backends)
	}
	nodeIPs = kept
	var set, localSet string
	switch proto {
	case ipvs.TCP:
		set, localSet = sn.NodePortTCP, sn.NodePortLocalTCP
	case ipvs.UDP:
		set, localSet = sn.NodePortUDP, sn.NodePortLocalUDP
	default:
		// hash:ip,port: one member per address.
		for _, a := range nodeIPs {
			c.entry(sn.NodePortSCTP, ipPortEntry(a, proto, port))
			if extLocal {
				c.entry(sn.NodePortLocalSCTP, ipPortEntry(a, proto, port))
			}
		}
		return
	}
	if len(nodeIPs) == 0 {
		return
	}
	c.entry(set, ipset.Entry(strconv.Itoa(int(port))))
	if extLocal {
		c.entry(localSet, ipset.Entry(strconv.Itoa(int(port))))
	}
}

// loadBalancer adds the set members of LoadBalancer ingress IP addr: the port, its -LOCAL
// copy, and the firewall members when the Service has source ranges.
func (c *serviceComputation) loadBalancer(sn SetNameList, addr netip.Addr, proto ipvs.Protocol, port uint16) {
	e := ipPortEntry(addr, proto, port)
	c.entry(sn.LoadBalancer, e)
	if c.extLocal {
		c.entry(sn.LoadBalancerLocal, e)
	}
	if len(c.ranges) == 0 {
		return
	}
	fam := familyOf(addr)
	var mine []netip.Prefix
	for _, p := range c.ranges {
		if familyOf(p.Addr()) != fam {
			continue
		}
		if p.Bits() == 0 {
			return // the whole family is allowed: no firewall (hash sets refuse a /0 anyway)
		}
		mine = append(mine, p)
	}
	// Ranges only of the other family allow no one of this family.
	c.entry(sn.LoadBalancerFW, e)
	fromNode := false
	for _, p := range mine {
		c.entry(sn.LoadBalancerSourceCIDR, ipset.Entry(string(e)+","+p.String()))
		for _, n := range c.node.Addresses {
			fromNode = fromNode || p.Contains(n)
		}
	}
	if fromNode {
		c.entry(sn.LoadBalancerSourceIP, ipset.Entry(string(e)+","+addr.String()))
	}
}

// externalIPs parses spec.externalIPs, dropping (with an error) those outside the allowed
// CIDRs.
func (c *serviceComputation) externalIPs(svc *APIService) []netip.Addr {
	var out, seen []netip.Addr
	for _, s := range svc.Spec.ExternalIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			c.errs = append(c.errs, skipped(ReasonInvalidAddress, "service %s: parse external IP %q: %w", c.name, s, err))
			continue
		}
		if a = a.Unmap(); slices.Contains(seen, a) {
			continue // one decision, one report, per address
		}
		seen = append(seen, a)
		const kind = "external IP"
		if c.opts.DenyAllExternalIPs {
			c.refuse(ReasonExternalIPsDenied, EventExternalIPRefused, kind, a, "externalIPs are denied on this node (denyAllExternalIPs)")
			continue
		}
		if r, rule := c.reservedRule(a); r != "" {
			c.refuse(r, EventExternalIPRefused, kind, a, rule)
			continue
		}
		if allowed := c.opts.ExternalIPAllowedCIDRs; len(allowed) > 0 && !inAny(allowed, a) {
			c.refuse(ReasonExternalIPNotAllowed, EventExternalIPRefused, kind, a, "it is outside externalIPAllowedCIDRs")
			continue
		}
		out = append(out, a)
	}
	return out
}

// sourceRanges parses loadBalancerSourceRanges (or the older annotation), masked.
func (c *serviceComputation) sourceRanges(svc *APIService) []netip.Prefix {
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer {
		return nil
	}
	raw := svc.Spec.LoadBalancerSourceRanges
	if len(raw) == 0 {
		if a := svc.Annotations[SourceRangesAnnotation]; a != "" {
			raw = strings.Split(a, ",")
		}
	}
	var out []netip.Prefix
	for _, s := range raw {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			c.errs = append(c.errs, skipped(ReasonInvalidAddress, "service %s: parse load balancer source range %q: %w", c.name, s, err))
			continue
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}

// loadBalancerIPs returns the ingress IPs of a LoadBalancer Service, except those whose
// ipMode is Proxy (the load balancer proxies to the node; the node must not short-circuit
// the address) and those refused (reserved, or outside LoadBalancerIngressAllowedCIDRs).
func (c *serviceComputation) loadBalancerIPs(svc *APIService) []netip.Addr {
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer {
		return nil
	}
	var out, seen []netip.Addr
	for _, in := range svc.Ingress {
		if in.IP == "" || (in.IPMode != nil && *in.IPMode == v1.LoadBalancerIPModeProxy) {
			continue
		}
		a, err := netip.ParseAddr(in.IP)
		if err != nil {
			continue
		}
		if a = a.Unmap(); slices.Contains(seen, a) {
			continue
		}
		seen = append(seen, a)
		const kind = "load balancer ingress IP"
		if r, rule := c.reservedRule(a); r != "" {
			c.refuse(r, EventLoadBalancerIPRefused, kind, a, rule)
			continue
		}
		if allowed := c.opts.LoadBalancerIngressAllowedCIDRs; len(allowed) > 0 && !inAny(allowed, a) {
			c.refuse(ReasonLoadBalancerIPNotAllowed, EventLoadBalancerIPRefused, kind, a, "it is outside loadBalancerIngressAllowedCIDRs")
			continue
		}
		out = append(out, a)
	}
	return out
}

// externalPolicyLocal reports whether externalTrafficPolicy=Local applies: the Service is
// reachable from outside (NodePort, LoadBalancer, or externalIPs).
func externalPolicyLocal(svc *APIService) bool {
	if svc.Spec.ExternalTrafficPolicy != v1.ServiceExternalTrafficPolicyLocal {
		return false
	}
	t := svc.Spec.Type
	return t == v1.ServiceTypeNodePort || t == v1.ServiceTypeLoadBalancer || len(svc.Spec.ExternalIPs) > 0
}

// nodePortAddresses returns the NodePort addresses of family f: those of the options
// (loopback included: asked for explicitly; none with OnlyNodePortAddresses and an empty
// list), else the node's primary address of f, never a loopback one. Addresses no NodePort
// may use (nodePortAllowed: link-local, multicast, in a pod or Service CIDR, ...) are left
// out of both.
func nodePortAddresses(opts Options, node Node, f ipset.Family) []netip.Addr {
	var out []netip.Addr
	if len(opts.NodePortAddresses) > 0 || opts.OnlyNodePortAddresses {
		for _, a := range opts.NodePortAddresses {
			if a = a.Unmap(); familyOf(a) == f && nodePortAllowed(opts, a) && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		return out
	}
	for _, a := range node.Addresses {
		if a = a.Unmap(); familyOf(a) == f && !a.IsLoopback() && nodePortAllowed(opts, a) {
			return []netip.Addr{a}
		}
	}
	return nil
}

// hasLoopback reports whether an IPv4 loopback address is among addrs.
func hasLoopback(addrs []netip.Addr) bool {
	return slices.ContainsFunc(addrs, func(a netip.Addr) bool { return a.Unmap().Is4() && a.Unmap().IsLoopback() })
}

// NodePortAddressesIn returns the node's addresses (hostAddrs, as the daemon lists them
// from its links) that lie in one of cidrs, for Options.NodePortAddresses when the
// nodePortAddresses setting lists CIDRs, sorted and unique. A loopback address is kept only
// when a CIDR is itself a loopback range (127.0.0.0/8 or a part of it, ::1/128): a wide
// CIDR such as 0.0.0.0/0 never puts NodePorts on 127.0.0.1 (CVE-2020-8558).
func NodePortAddressesIn(cidrs []netip.Prefix, hostAddrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range hostAddrs {
		a = a.Unmap()
		for _, p := range cidrs {
			if !p.Contains(a) {
				continue
			}
			if a.IsLoopback() && !p.Masked().Addr().IsLoopback() {
				continue
			}
			out = append(out, a)
			break
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
