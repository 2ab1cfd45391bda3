package desired

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset"
)

func TestGlobal(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		kv   KernelVersion
	}{
		{"ipv4-cluster-cidr-strict-arp", Options{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}, StrictARP: true}, KernelVersion{6, 1}},
		{"dual-stack-two-cidrs-old-kernel", Options{
			Families:     []ipset.Family{ipset.IPv4, ipset.IPv6},
			ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("fd00:244::/56"), netip.MustParsePrefix("10.245.0.0/16"), netip.MustParsePrefix("10.244.0.0/16")},
		}, KernelVersion{5, 4}},
		{"masquerade-all", Options{MasqueradeAll: true}, KernelVersion{4, 0}},
		{"no-masquerade", Options{}, KernelVersion{5, 9}},
		{"nodeport-loopback-asked-for", Options{NodePortAddresses: addrs("127.0.0.1", "192.168.1.10")}, KernelVersion{6, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fixture.Golden(t, "global-"+tc.name, Global(tc.opts, tc.kv).String())
		})
	}
}

func TestGlobalRulesAreValid(t *testing.T) {
	for _, opts := range []Options{
		{Families: []ipset.Family{ipset.IPv4, ipset.IPv6}, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00::/64")}},
		{MasqueradeAll: true},
		{},
	} {
		for _, fr := range Global(opts, KernelVersion{6, 1}).Rules {
			if err := fr.Validate(); err != nil {
				t.Errorf("options %+v, family %s: %v", opts, fr.Family, err)
			}
		}
	}
}

// TestRouteLocalnetOnlyWithGuard: route_localnet=1 is wanted exactly when the IPv4 ruleset
// holds the localnet guard (CVE-2020-8558), and never on IPv6 rules.
func TestRouteLocalnetOnlyWithGuard(t *testing.T) {
	dual := []ipset.Family{ipset.IPv4, ipset.IPv6}
	tests := []struct {
		name string
		opts Options
		want bool
	}{
		{"no nodePortAddresses", Options{}, false},
		{"node address only", Options{NodePortAddresses: addrs("192.168.1.10")}, false},
		{"IPv4 loopback", Options{NodePortAddresses: addrs("127.0.0.1")}, true},
		{"IPv4 loopback, dual-stack", Options{Families: dual, NodePortAddresses: addrs("127.0.0.1", "::1")}, true},
		{"IPv6 loopback only", Options{Families: dual, NodePortAddresses: addrs("::1")}, false},
		{"IPv4 loopback on an IPv6-only node", Options{Families: []ipset.Family{ipset.IPv6}, NodePortAddresses: addrs("127.0.0.1")}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := Global(tc.opts, KernelVersion{6, 1})
			sysctl := slices.ContainsFunc(g.Sysctls, func(s Sysctl) bool {
				return s.Name == "net/ipv4/conf/all/route_localnet" && s.Value == "1"
			})
			guards := map[ipset.Family]bool{}
			for _, fr := range g.Rules {
				if err := fr.Validate(); err != nil {
					t.Errorf("family %s: %v", fr.Family, err)
				}
				for _, c := range fr.Chains {
					if c.Table == "filter" && c.Name == ChainProxyFirewall && slices.Contains(c.Rules, LocalnetGuardRule) {
						guards[fr.Family] = true
					}
				}
			}
			if sysctl != tc.want || guards[ipset.IPv4] != tc.want || guards[ipset.IPv6] {
				t.Errorf("route_localnet %v, guard IPv4 %v, guard IPv6 %v; want route_localnet and IPv4 guard %v, no IPv6 guard",
					sysctl, guards[ipset.IPv4], guards[ipset.IPv6], tc.want)
			}
			if RouteLocalnet(tc.opts) != tc.want {
				t.Errorf("RouteLocalnet = %v, want %v", RouteLocalnet(tc.opts), tc.want)
			}
		})
	}
}

func TestParseKernelVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    KernelVersion
		wantErr bool
	}{
		{"6.1.0-28-amd64", KernelVersion{6, 1}, false},
		{"5.10.226", KernelVersion{5, 10}, false},
		{"4.19", KernelVersion{4, 19}, false},
		{"6", KernelVersion{}, true},
		{"", KernelVersion{}, true},
	}
	for _, tc := range tests {
		got, err := ParseKernelVersion(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseKernelVersion(%q) error %v, want error %v", tc.in, err, tc.wantErr)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseKernelVersion(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestSetNamesFitTheKernel(t *testing.T) {
	for _, n := range OwnedSets() {
		if len(n) > ipset.MaxNameLen {
			t.Errorf("set name %s longer than %d", n, ipset.MaxNameLen)
		}
	}
	for _, s := range Global(Options{Families: []ipset.Family{ipset.IPv4, ipset.IPv6}}, KernelVersion{6, 1}).Sets {
		if err := s.Validate(); err != nil {
			t.Errorf("set %s: %v", s.Name, err)
		}
	}
}
