package desired

// The fixed state: sets, iptables rules and sysctls that do not change as Services come and
// go. Services only add and remove set members, so the rules are written once at start. The
// rules and their design are in rules.go, the sets in sets.go.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// MasqMark is the firewall mark bit that asks KUBE-POSTROUTING to masquerade a packet; the
// same bit kube-proxy uses, so the two never disagree on a node that migrates.
const MasqMark = "0x4000"

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
		g.Sets = append(g.Sets, sets(f)...)
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
	if RouteLocalnet(opts) {
		// Asked for explicitly: NodePorts on 127.0.0.0/8 need the kernel to route
		// loopback-sourced packets off the loopback link (CVE-2020-8558 is why this is off
		// by default). Never without the guard rule of rules.go, which the IPv4 ruleset
		// holds whenever this is set.
		g.Sysctls = append(g.Sysctls, Sysctl{Name: RouteLocalnetSysctl, Value: "1"})
	}
	if opts.StrictARP {
		g.Sysctls = append(g.Sysctls,
			Sysctl{Name: "net/ipv4/conf/all/arp_ignore", Value: "1", AtLeast: true},
			Sysctl{Name: "net/ipv4/conf/all/arp_announce", Value: "2", AtLeast: true},
		)
	}
	return g
}

// RouteLocalnetSysctl is the sysctl that lets the kernel route 127.0.0.0/8 off the loopback
// link; set only with the localnet guard (RouteLocalnet).
const RouteLocalnetSysctl = "net/ipv4/conf/all/route_localnet"

// RouteLocalnet reports whether Global sets net.ipv4.conf.all.route_localnet: only when an
// IPv4 loopback address is among the NodePort addresses and IPv4 is served (an IPv6-only
// node has no IPv4 ruleset to hold the guard, and no IPv4 NodePort to need it). Whenever it
// is true, the IPv4 ruleset holds LocalnetGuardRule.
func RouteLocalnet(opts Options) bool {
	return familyEnabled(opts, ipset.IPv4) && hasLoopback(opts.NodePortAddresses)
}

// String prints the global state in a stable text form.
func (g GlobalState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dummy %s\n", g.Dummy)
	for _, s := range g.Sets {
		if s.Type == ipset.BitmapPort {
			fmt.Fprintf(&b, "set %s %s range %d-%d\n", s.Name, s.Type, s.PortFrom, s.PortTo)
			continue
		}
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
