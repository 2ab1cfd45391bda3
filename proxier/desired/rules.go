package desired

// The fixed iptables rules. Design, per family (IPv6 uses the KUBE-6-* sets):
//
//	nat KUBE-SERVICES (hooked from PREROUTING and OUTPUT)
//	  CLUSTER-IP dst,dst -j KUBE-CLUSTER-IP          (chain, only if masquerading)
//	  CLUSTER-IP dst,dst -j ACCEPT                   (no later nat rule rewrites Service traffic)
//	  EXTERNAL-IP dst,dst -j KUBE-MARK-MASQ          (externalTrafficPolicy=Cluster)
//	  EXTERNAL-IP dst,dst -j ACCEPT
//	  EXTERNAL-IP-LOCAL dst,dst -j ACCEPT            (Local: the client address is kept)
//	  LOAD-BALANCER-FW dst,dst -j KUBE-FIREWALL      (loadBalancerSourceRanges)
//	  LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER
//	  LOAD-BALANCER dst,dst -j ACCEPT
//	  -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT (NodePorts on the node's own addresses)
//	nat KUBE-CLUSTER-IP: "-s <cluster CIDR> -j RETURN" per CIDR, then -j KUBE-MARK-MASQ
//	  (with masquerade-all it holds only the jump): traffic to a ClusterIP from outside the
//	  pod network (the node itself, hostNetwork pods) is masqueraded so replies come back here.
//	nat KUBE-LOAD-BALANCER: LOAD-BALANCER-LOCAL dst,dst -j RETURN; -j KUBE-MARK-MASQ
//	nat KUBE-NODE-PORT, per protocol (TCP and UDP match the bitmap:port sets on the
//	  destination port, SCTP the hash:ip,port sets on address and port):
//	  -p tcp NODE-PORT-LOCAL-TCP dst -j RETURN; -p tcp NODE-PORT-TCP dst -j KUBE-MARK-MASQ
//	nat KUBE-FIREWALL: LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN;
//	  LOAD-BALANCER-SOURCE-IP dst,dst,src -j RETURN; -j MARK --or-mark 0x8000
//	nat KUBE-MARK-MASQ: -j MARK --or-mark 0x4000
//	nat KUBE-POSTROUTING (hooked from POSTROUTING)
//	  LOOP-BACK dst,dst,src -j MASQUERADE   (hairpin: a pod reaching itself through a Service;
//	      after IPVS's DNAT source and destination are both the pod)
//	  -m mark ! --mark 0x4000/0x4000 -j RETURN
//	  -j MARK --xor-mark 0x4000
//	  -j MASQUERADE
//	filter KUBE-PROXY-FIREWALL (hooked first in INPUT, FORWARD and OUTPUT)
//	  -m mark --mark 0x8000/0x8000 -j DROP
//	filter KUBE-NODE-PORT (hooked from INPUT): HEALTH-CHECK-NODE-PORT dst -j ACCEPT
//	filter KUBE-IPVS-FILTER (hooked from INPUT; IPVS's LOCAL_IN hook runs after filter)
//	  CLUSTER-IP, EXTERNAL-IP, EXTERNAL-IP-LOCAL, LOAD-BALANCER dst,dst -j ACCEPT
//	      Service traffic is accepted before a host firewall's default policy can drop it.
//	  -m conntrack --ctstate NEW -m set --match-set IPVS-IPS dst -j REJECT
//	      k/k#72236: every VIP is a local address (bound to kube-ipvs0), so without this any
//	      host process listening on 0.0.0.0 (sshd, a hostPort, the kubelet) would answer on
//	      every ClusterIP. New connections to a VIP on a port that is not a Service port are
//	      rejected; replies to connections the node opened (ESTABLISHED) pass.
//	filter KUBE-FORWARD (hooked from FORWARD)
//	  -m mark --mark 0x4000/0x4000 -j ACCEPT
//	  -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//	      replies of IPVS NAT connections cross FORWARD before IPVS un-NATs them.
//
// loadBalancerSourceRanges: the decision is taken in nat, where the packet still carries
// the LoadBalancer IP as its destination on every path, and carried out in filter by a
// mark (the drop bit 0x8000, as kube-proxy's old KUBE-MARK-DROP and the kubelet use it).
// The nat OUTPUT hook runs before IPVS's LOCAL_OUT hook, which is why a connection the node
// itself opens to a LoadBalancer IP is filtered too: kube-proxy's IPVS mode first missed it
// (k/k#119656: IPVS rewrites a node's packet before filter INPUT could see it) and then
// fixed it with one `-m ipvs --vaddr` rule per LoadBalancer in OUTPUT; here one fixed rule
// covers them all. As in kube-proxy, the node may connect when a source range holds one
// of its addresses (it then connects from the LoadBalancer IP itself, bound locally: the
// LOAD-BALANCER-SOURCE-IP member). Only the first packet of a connection crosses nat; a
// dropped first packet leaves no connection behind, so the rest never come.
//
// route_localnet is never set (unless NodePorts on loopback are asked for explicitly):
// ClusterIPs and NodePorts are not reachable through 127.0.0.0/8 (CVE-2020-8558). When it
// is set (Global), KUBE-PROXY-FIREWALL also holds the martian-source guard, IPv4 only:
//
//	! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
//
// route_localnet=1 makes the kernel accept, on every link, packets addressed to 127.0.0.0/8:
// a neighbour on the node's L2 segment could then reach every process listening on
// 127.0.0.1 (a kubelet, a local etcd). The guard drops any new packet to the loopback
// range whose source is not itself a loopback address: local clients of a loopback NodePort
// keep working (their source is 127.x), replies of connections the node opened pass
// (ESTABLISHED), and so do connections some other rule DNATed there on purpose (DNAT), as
// the kubelet's own copy of this rule allows. It sits in KUBE-PROXY-FIREWALL, hooked first
// from INPUT and OUTPUT, so it decides before IPVS (LOCAL_IN runs after filter INPUT) and
// before a host firewall's ACCEPT can end the chain.

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// DropMark is the firewall mark bit that filter KUBE-PROXY-FIREWALL drops: set in nat
// KUBE-FIREWALL on packets to a LoadBalancer from a source its loadBalancerSourceRanges do
// not allow.
const DropMark = "0x8000"

// Chain names kubevs owns. Never rename them: a renamed chain would be orphaned on upgrade.
const (
	ChainServices      = "KUBE-SERVICES"
	ChainClusterIPMasq = "KUBE-CLUSTER-IP"
	ChainMarkMasq      = "KUBE-MARK-MASQ"
	ChainPostrouting   = "KUBE-POSTROUTING"
	ChainIPVSFilter    = "KUBE-IPVS-FILTER"
	ChainForward       = "KUBE-FORWARD"
	ChainNodePort      = "KUBE-NODE-PORT"     // nat: NodePort masquerade; filter: health checks
	ChainLoadBalancer  = "KUBE-LOAD-BALANCER" // nat: LoadBalancer masquerade
	ChainFirewall      = "KUBE-FIREWALL"      // nat: loadBalancerSourceRanges decision
	ChainProxyFirewall = "KUBE-PROXY-FIREWALL"
)

func rules(opts Options, f ipset.Family) netfilter.Ruleset {
	n := SetNames(f)
	match := func(set, dir string) string { return "-m set --match-set " + set + " " + dir }
	clusterIP := match(n.ClusterIP, "dst,dst")
	var cidrs []netip.Prefix
	for _, p := range opts.ClusterCIDRs {
		if familyOf(p.Addr()) == f {
			cidrs = append(cidrs, p.Masked())
		}
	}
	slices.SortFunc(cidrs, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	var svc []string
	var chains []netfilter.Chain
	if opts.MasqueradeAll || len(cidrs) > 0 {
		svc = append(svc, clusterIP+" -j "+ChainClusterIPMasq)
		var masq []string
		if !opts.MasqueradeAll {
			for _, p := range cidrs {
				masq = append(masq, "-s "+p.String()+" -j RETURN")
			}
		}
		masq = append(masq, "-j "+ChainMarkMasq)
		chains = append(chains, netfilter.Chain{Table: "nat", Name: ChainClusterIPMasq, Rules: masq})
	}
	svc = append(svc,
		clusterIP+" -j ACCEPT",
		match(n.ExternalIP, "dst,dst")+" -j "+ChainMarkMasq,
		match(n.ExternalIP, "dst,dst")+" -j ACCEPT",
		match(n.ExternalIPLocal, "dst,dst")+" -j ACCEPT",
		match(n.LoadBalancerFW, "dst,dst")+" -j "+ChainFirewall,
		match(n.LoadBalancer, "dst,dst")+" -j "+ChainLoadBalancer,
		match(n.LoadBalancer, "dst,dst")+" -j ACCEPT",
		"-m addrtype --dst-type LOCAL -j "+ChainNodePort,
	)
	nodePort := []string{
		"-p tcp " + match(n.NodePortLocalTCP, "dst") + " -j RETURN",
		"-p tcp " + match(n.NodePortTCP, "dst") + " -j " + ChainMarkMasq,
		"-p udp " + match(n.NodePortLocalUDP, "dst") + " -j RETURN",
		"-p udp " + match(n.NodePortUDP, "dst") + " -j " + ChainMarkMasq,
		"-p sctp " + match(n.NodePortLocalSCTP, "dst,dst") + " -j RETURN",
		"-p sctp " + match(n.NodePortSCTP, "dst,dst") + " -j " + ChainMarkMasq,
	}
	chains = append(chains,
		netfilter.Chain{Table: "nat", Name: ChainServices, Rules: svc},
		netfilter.Chain{Table: "nat", Name: ChainLoadBalancer, Rules: []string{
			match(n.LoadBalancerLocal, "dst,dst") + " -j RETURN",
			"-j " + ChainMarkMasq,
		}},
		netfilter.Chain{Table: "nat", Name: ChainNodePort, Rules: nodePort},
		netfilter.Chain{Table: "nat", Name: ChainFirewall, Rules: []string{
			match(n.LoadBalancerSourceCIDR, "dst,dst,src") + " -j RETURN",
			match(n.LoadBalancerSourceIP, "dst,dst,src") + " -j RETURN",
			"-j MARK --or-mark " + DropMark,
		}},
		netfilter.Chain{Table: "nat", Name: ChainMarkMasq, Rules: []string{"-j MARK --or-mark " + MasqMark}},
		netfilter.Chain{Table: "nat", Name: ChainPostrouting, Rules: []string{
			match(n.LoopBack, "dst,dst,src") + " -j MASQUERADE",
			"-m mark ! --mark " + MasqMark + "/" + MasqMark + " -j RETURN",
			"-j MARK --xor-mark " + MasqMark,
			"-j MASQUERADE",
		}},
		netfilter.Chain{Table: "filter", Name: ChainProxyFirewall, Rules: proxyFirewall(opts, f)},
		netfilter.Chain{Table: "filter", Name: ChainNodePort, Rules: []string{
			match(n.HealthCheckNodePort, "dst") + " -j ACCEPT",
		}},
		netfilter.Chain{Table: "filter", Name: ChainIPVSFilter, Rules: []string{
			clusterIP + " -j ACCEPT",
			match(n.ExternalIP, "dst,dst") + " -j ACCEPT",
			match(n.ExternalIPLocal, "dst,dst") + " -j ACCEPT",
			match(n.LoadBalancer, "dst,dst") + " -j ACCEPT",
			"-m conntrack --ctstate NEW " + match(n.VIPs, "dst") + " -j REJECT",
		}},
		netfilter.Chain{Table: "filter", Name: ChainForward, Rules: []string{
			"-m mark --mark " + MasqMark + "/" + MasqMark + " -j ACCEPT",
			"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		}},
	)
	return netfilter.Ruleset{
		Chains: chains,
		Jumps: []netfilter.Jump{
			{Table: "nat", From: "PREROUTING", To: ChainServices},
			{Table: "nat", From: "OUTPUT", To: ChainServices},
			{Table: "nat", From: "POSTROUTING", To: ChainPostrouting},
			// The firewall first: the ACCEPTs after it would end the filter chain.
			{Table: "filter", From: "INPUT", To: ChainProxyFirewall},
			{Table: "filter", From: "FORWARD", To: ChainProxyFirewall},
			{Table: "filter", From: "OUTPUT", To: ChainProxyFirewall},
			{Table: "filter", From: "INPUT", To: ChainNodePort},
			{Table: "filter", From: "INPUT", To: ChainIPVSFilter},
			{Table: "filter", From: "FORWARD", To: ChainForward},
		},
	}
}

// LocalnetGuardRule drops packets to 127.0.0.0/8 from non-loopback sources that are no part of
// a connection the node knows (CVE-2020-8558); see the design note above. It is in
// iptables-save's canonical order, so a dump of the kernel compares equal.
const LocalnetGuardRule = "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"

// proxyFirewall returns the rules of filter KUBE-PROXY-FIREWALL: the loadBalancerSourceRanges
// drop and, for IPv4 whenever route_localnet is set (RouteLocalnet), the localnet guard.
func proxyFirewall(opts Options, f ipset.Family) []string {
	r := []string{"-m mark --mark " + DropMark + "/" + DropMark + " -j DROP"}
	if f == ipset.IPv4 && RouteLocalnet(opts) {
		r = append(r, LocalnetGuardRule)
	}
	return r
}
