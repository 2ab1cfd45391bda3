package reconcile

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/proxier/sysctl/sysctltest"
)

// The fixed ruleset and the node-facing set members load into the host's own kernel (real
// ipset and iptables in a fresh network namespace; IPVS and the dummy link stay fakes, the
// host kernel has neither): what the kernel holds afterwards equals what was asked for,
// member for member, in both families, and Cleanup removes all of it.
func TestNodeFacingSetsAndRulesOnTheHostKernel(t *testing.T) {
	opts := desired.Options{
		Families:     []ipset.Family{ipset.IPv4, ipset.IPv6},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/56")},
	}
	lb := svc{name: "ns/lb", ip: "10.96.0.30", ports: []string{"TCP:80", "UDP:53", "SCTP:9"}, eps: []string{"10.244.0.3@local", "10.244.1.5"},
		typ: v1.ServiceTypeLoadBalancer, ingress: []string{"198.51.100.1"}, ranges: []string{"192.168.1.0/24", "203.0.113.0/24"},
		extLocal: true, opts: &opts}
	ext := svc{name: "ns/ext", ip: "10.96.0.40", ports: []string{"TCP:80"}, eps: []string{"10.244.1.5"}, extIPs: []string{"198.51.100.7"}, opts: &opts}
	np6 := svc{name: "ns/np6", ip: "fd00:96::50", ports: []string{"TCP:80", "SCTP:9"}, eps: []string{"fd00:244::5@local"},
		typ: v1.ServiceTypeNodePort, opts: &opts}
	testenv.InNetns(t, func() {
		f, k := hostKernel(t)
		k.Sysctl = sysctltest.NewFake(map[string]string{
			"kernel/osrelease": "6.1.0", "net/ipv4/vs/conntrack": "1", "net/ipv4/vs/expire_nodest_conn": "1",
			"net/ipv4/vs/expire_quiescent_template": "1", "net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "1",
		})
		r := New(k, Options{Desired: opts})
		c := ctx(t)
		must(t, r.Start(c))
		services := all(t, lb, ext, np6)
		must(t, r.Resync(c, services))
		var want []desired.SetEntry
		for _, s := range services {
			want = append(want, s.Entries...)
		}
		slices.SortFunc(want, desired.CompareEntries)
		want = slices.Compact(want)
		var got []desired.SetEntry
		for _, name := range desired.OwnedSets() {
			es, err := k.IPSet.Entries(name)
			if err != nil {
				t.Fatalf("members of %s: %v", name, err)
			}
			for _, e := range es {
				got = append(got, desired.SetEntry{Set: name, Entry: e})
			}
		}
		slices.SortFunc(got, desired.CompareEntries)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("set members in the kernel (-want +got):\n%s", diff)
		}
		// iptables-save prints some rules in its own words (MARK --set-xmark, REJECT
		// --reject-with ...), so chains are compared by name and rule count, jumps as they are.
		for _, fr := range desired.Global(opts, desired.KernelVersion{Major: 6, Minor: 1}).Rules {
			cur, err := k.Netfilter.Dump(fr.Family)
			if err != nil {
				t.Fatalf("dump %s rules: %v", fr.Family, err)
			}
			if diff := cmp.Diff(shape(fr.Ruleset), shape(cur)); diff != "" {
				t.Errorf("%s rules in the kernel differ from the fixed ruleset (-want +got):\n%s", fr.Family, diff)
			}
			// The firewall's DROP comes before the ACCEPTs of the other INPUT chains.
			var input []string
			for _, j := range cur.Jumps {
				if j.Table == "filter" && j.From == "INPUT" {
					input = append(input, j.To)
				}
			}
			if diff := cmp.Diff([]string{desired.ChainProxyFirewall, desired.ChainNodePort, desired.ChainIPVSFilter}, input); diff != "" {
				t.Errorf("%s filter INPUT jumps (-want +got):\n%s", fr.Family, diff)
			}
		}
		// A restart adopts all of it without a write to sets or rules.
		f.reset()
		r2 := New(k, Options{Desired: opts})
		must(t, r2.Start(c))
		must(t, r2.Resync(c, services))
		if ops := f.ipvs.Ops(); len(ops) != 0 {
			t.Errorf("restart wrote to IPVS: %v", ops)
		}
		if err := Cleanup(c, k, nil); err != nil {
			t.Fatalf("cleanup: %v", err)
		}
		left, err := k.IPSet.Sets()
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range desired.OwnedSets() {
			if slices.Contains(left, name) {
				t.Errorf("set %s left after cleanup", name)
			}
		}
	})
}

// shape is a ruleset's chains with their rule counts and its jumps, sorted.
func shape(rs netfilter.Ruleset) []string {
	var out []string
	for _, c := range rs.Chains {
		out = append(out, fmt.Sprintf("chain %s %s: %d rules", c.Table, c.Name, len(c.Rules)))
	}
	for _, j := range rs.Jumps {
		out = append(out, fmt.Sprintf("jump %s %s -> %s", j.Table, j.From, j.To))
	}
	slices.Sort(out)
	return out
}
