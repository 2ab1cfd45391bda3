package desired

import (
	"net/netip"
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
