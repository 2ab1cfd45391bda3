package desired

// The fixed state: sets, iptables rules and sysctls that do not change as Services come and
// go. Services only add and remove set members, so the rules are written once at start.
//
// Design of the rules (per family; IPv6 uses the KUBE-6-* sets):
//
//	nat KUBE-SERVICES (hooked from PREROUTING and OUTPUT)
//	  -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-CLUSTER-IP   (chain, only if masquerading)
//	  -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT            (no later nat rule rewrites Service traffic)
//	nat chain KUBE-CLUSTER-IP: "-s <cluster CIDR> -j RETURN" per CIDR, then -j KUBE-MARK-MASQ
//	  (with masquerade-all it holds only the jump): traffic to a ClusterIP from outside the
//	  pod network (the node itself, hostNetwork pods) is masqueraded so replies come back here.
//	nat KUBE-MARK-MASQ: -j MARK --or-mark 0x4000
//	nat KUBE-POSTROUTING (hooked from POSTROUTING)
//	  -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE   (hairpin: a pod reaching itself
//	      through a Service; after IPVS's DNAT source and destination are both the pod)
//	  -m mark ! --mark 0x4000/0x4000 -j RETURN
//	  -j MARK --xor-mark 0x4000
//	  -j MASQUERADE
//	filter KUBE-IPVS-FILTER (hooked first in INPUT; IPVS's LOCAL_IN hook runs after filter)
//	  -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
//	      Service traffic is accepted before a host firewall's default policy can drop it.
//	  -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT
//	      k/k#72236: every VIP is a local address (bound to kube-ipvs0), so without this any
//	      host process listening on 0.0.0.0 (sshd, a hostPort, the kubelet) would answer on
//	      every ClusterIP. New connections to a VIP on a port that is not a Service port are
//	      rejected; replies to connections the node opened (ESTABLISHED) pass.
//	filter KUBE-FORWARD (hooked from FORWARD)
//	  -m mark --mark 0x4000/0x4000 -j ACCEPT
//	  -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//	      replies of IPVS NAT connections cross FORWARD before IPVS un-NATs them.
//
// route_localnet is never set: ClusterIPs are not reachable through 127.0.0.0/8.

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// MasqMark is the firewall mark bit that asks KUBE-POSTROUTING to masquerade a packet; the
// same bit kube-proxy uses, so the two never disagree on a node that migrates.
const MasqMark = "0x4000"

// Chain names kubevs owns. Never rename them: a renamed chain would be orphaned on upgrade.
const (
	ChainServices      = "KUBE-SERVICES"
	ChainClusterIPMasq = "KUBE-CLUSTER-IP"
	ChainMarkMasq      = "KUBE-MARK-MASQ"
	ChainPostrouting   = "KUBE-POSTROUTING"
	ChainIPVSFilter    = "KUBE-IPVS-FILTER"
	ChainForward       = "KUBE-FORWARD"
)

// SetNameList names kubevs's sets in one family.
type SetNameList struct {
	// ClusterIP (hash:ip,port) holds "VIP,proto:port" of every Service port.
	ClusterIP string
	// LoopBack (hash:ip,port,ip) holds "podIP,proto:port,podIP" of every local endpoint.
	LoopBack string
	// VIPs (hash:ip) holds every address bound to the dummy link.
	VIPs string
}

// SetNames returns the set names of family f: KUBE-CLUSTER-IP, KUBE-LOOP-BACK and
// KUBE-IPVS-IPS for IPv4, and KUBE-6-* for IPv6 (set names are global across families; the
// same convention as kube-proxy). Never rename them.
func SetNames(f ipset.Family) SetNameList {
	if f == ipset.IPv6 {
		return SetNameList{ClusterIP: "KUBE-6-CLUSTER-IP", LoopBack: "KUBE-6-LOOP-BACK", VIPs: "KUBE-6-IPVS-IPS"}
	}
	return SetNameList{ClusterIP: "KUBE-CLUSTER-IP", LoopBack: "KUBE-LOOP-BACK", VIPs: "KUBE-IPVS-IPS"}
}

// OwnedSets lists every set name kubevs may have created, in both families.
func OwnedSets() []string {
	var out []string
	for _, f := range []ipset.Family{ipset.IPv4, ipset.IPv6} {
		n := SetNames(f)
		out = append(out, n.ClusterIP, n.LoopBack, n.VIPs)
	}
	return out
}

// Sysctl is one kernel parameter kubevs needs.
type Sysctl struct {
	Name  string // slashed, e.g. "net/ipv4/vs/conntrack"
	Value string
	// AtLeast leaves a larger numeric value alone (arp_ignore=2 is stricter than 1).
	AtLeast bool
}

// KernelVersion is the running kernel's major and minor version.
type KernelVersion struct{ Major, Minor int }

// ParseKernelVersion reads a kernel release such as "6.1.0-28-amd64".
func ParseKernelVersion(release string) (KernelVersion, error) {
	f := strings.FieldsFunc(release, func(r rune) bool { return r < '0' || r > '9' })
	if len(f) < 2 {
		return KernelVersion{}, fmt.Errorf("parse kernel release %q: want major.minor", release)
	}
	maj, err1 := strconv.Atoi(f[0])
	min, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return KernelVersion{}, fmt.Errorf("parse kernel release %q: want major.minor", release)
	}
	return KernelVersion{maj, min}, nil
}

// Less reports whether v is older than major.minor.
func (v KernelVersion) Less(major, minor int) bool {
	return v.Major < major || (v.Major == major && v.Minor < minor)
}

// FamilyRules is the ruleset of one family.
type FamilyRules struct {
	Family ipset.Family
	netfilter.Ruleset
}

// GlobalState is the kernel state that does not depend on Services.
type GlobalState struct {
	Dummy   string
	Sets    []ipset.Set
	Rules   []FamilyRules
	Sysctls []Sysctl
}

// Families returns the enabled families in a stable order (IPv4 first).
func Families(opts Options) []ipset.Family {
	var out []ipset.Family
	for _, f := range []ipset.Family{ipset.IPv4, ipset.IPv6} {
		if familyEnabled(opts, f) {
			out = append(out, f)
		}
	}
	return out
}

// Global returns the fixed state for opts on a kernel of version kv.
//
// Sysctls: IPVS needs vs/conntrack=1 (its NAT connections go through netfilter, so the
// masquerade rules see them), expire_nodest_conn=1 (a connection to a deleted real server
// is dropped at once instead of hanging) and expire_quiescent_template=1 (persistence
// templates of weight-0 real servers expire, so affinity does not pin clients to a draining
// pod), plus forwarding. conn_reuse_mode=0 is set only on kernels 4.1 to 5.8: there mode 1
// made a reused source port wait a second (k/k#81775); 5.9 fixed it, so newer kernels keep
// the default, which also lets new connections leave a deleted real server.
//
// Strict ARP sets arp_ignore=1 and arp_announce=2 on "all": the per-interface knob of
// kube-ipvs0 would not help, since the kernel consults the interface an ARP request
// arrives on (eth0, never the dummy), and takes the maximum of "all" and that interface.
func Global(opts Options, kv KernelVersion) GlobalState {
	g := GlobalState{Dummy: link.DefaultDummy}
	for _, f := range Families(opts) {
		n := SetNames(f)
		g.Sets = append(g.Sets,
			ipset.Set{Name: n.ClusterIP, Type: ipset.HashIPPort, Family: f, Comment: "kubevs: ClusterIP,proto:port of every Service port"},
			ipset.Set{Name: n.LoopBack, Type: ipset.HashIPPortIP, Family: f, Comment: "kubevs: local endpoints, for hairpin masquerade"},
			ipset.Set{Name: n.VIPs, Type: ipset.HashIP, Family: f, Comment: "kubevs: addresses bound to " + link.DefaultDummy},
		)
		g.Rules = append(g.Rules, FamilyRules{Family: f, Ruleset: rules(opts, f)})
	}
	g.Sysctls = []Sysctl{
		{Name: "net/ipv4/vs/conntrack", Value: "1"},
		{Name: "net/ipv4/vs/expire_nodest_conn", Value: "1"},
		{Name: "net/ipv4/vs/expire_quiescent_template", Value: "1"},
	}
	if !kv.Less(4, 1) && kv.Less(5, 9) {
		g.Sysctls = append(g.Sysctls, Sysctl{Name: "net/ipv4/vs/conn_reuse_mode", Value: "0"})
	}
	g.Sysctls = append(g.Sysctls, Sysctl{Name: "net/ipv4/ip_forward", Value: "1"})
	if familyEnabled(opts, ipset.IPv6) {
		g.Sysctls = append(g.Sysctls, Sysctl{Name: "net/ipv6/conf/all/forwarding", Value: "1"})
	}
	if opts.StrictARP {
		g.Sysctls = append(g.Sysctls,
			Sysctl{Name: "net/ipv4/conf/all/arp_ignore", Value: "1", AtLeast: true},
			Sysctl{Name: "net/ipv4/conf/all/arp_announce", Value: "2", AtLeast: true},
		)
	}
	return g
}

func rules(opts Options, f ipset.Family) netfilter.Ruleset {
	n := SetNames(f)
	clusterIP := "-m set --match-set " + n.ClusterIP + " dst,dst"
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
	svc = append(svc, clusterIP+" -j ACCEPT")
	chains = append(chains,
		netfilter.Chain{Table: "nat", Name: ChainServices, Rules: svc},
		netfilter.Chain{Table: "nat", Name: ChainMarkMasq, Rules: []string{"-j MARK --or-mark " + MasqMark}},
		netfilter.Chain{Table: "nat", Name: ChainPostrouting, Rules: []string{
			"-m set --match-set " + n.LoopBack + " dst,dst,src -j MASQUERADE",
			"-m mark ! --mark " + MasqMark + "/" + MasqMark + " -j RETURN",
			"-j MARK --xor-mark " + MasqMark,
			"-j MASQUERADE",
		}},
		netfilter.Chain{Table: "filter", Name: ChainIPVSFilter, Rules: []string{
			clusterIP + " -j ACCEPT",
			"-m conntrack --ctstate NEW -m set --match-set " + n.VIPs + " dst -j REJECT",
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
			{Table: "filter", From: "INPUT", To: ChainIPVSFilter},
			{Table: "filter", From: "FORWARD", To: ChainForward},
		},
	}
}

// String prints the global state in a stable text form.
func (g GlobalState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dummy %s\n", g.Dummy)
	for _, s := range g.Sets {
		fmt.Fprintf(&b, "set %s %s %s\n", s.Name, s.Type, s.Family)
	}
	for _, fr := range g.Rules {
		for _, c := range fr.Chains {
			for _, r := range c.Rules {
				fmt.Fprintf(&b, "rule %s %s %s %s\n", fr.Family, c.Table, c.Name, r)
			}
		}
		for _, j := range fr.Jumps {
			fmt.Fprintf(&b, "jump %s %s %s -> %s\n", fr.Family, j.Table, j.From, j.To)
		}
	}
	for _, s := range g.Sysctls {
		op := "="
		if s.AtLeast {
			op = ">="
		}
		fmt.Fprintf(&b, "sysctl %s %s %s\n", s.Name, op, s.Value)
	}
	return b.String()
}
