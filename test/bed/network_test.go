package bed

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestConflist(t *testing.T) {
	tests := []struct {
		name string
		cfg  NetworkConfig
	}{
		{name: "default", cfg: NetworkConfig{}},
		{name: "ipv4-only", cfg: NetworkConfig{IPv4Only: true}},
		{name: "kubevs", cfg: NetworkConfig{
			PodCIDR: "10.245.0.0/24",
			IPAM:    map[string]any{"type": "kubevs-ipam"},
			Chain:   []map[string]any{{"type": "kubevs", "socket": "/run/kubevs/proxier.sock"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.setDefaults()
			got, err := tc.cfg.conflist("/var/lib/bed/ipam")
			if err != nil {
				t.Fatal(err)
			}
			// It is a conflist libcni accepts, with the plugins in chain order.
			list, err := libcni.ConfListFromBytes(got)
			if err != nil {
				t.Fatalf("libcni rejects the conflist: %v", err)
			}
			var types []string
			for _, p := range list.Plugins {
				types = append(types, p.Network.Type)
			}
			want := []string{"bridge", "portmap"}
			for _, c := range tc.cfg.Chain {
				want = append(want, c["type"].(string))
			}
			if diff := cmp.Diff(want, types); diff != "" {
				t.Errorf("plugin chain (-want +got):\n%s", diff)
			}
			// kubevs sets hairpin itself; the bed must not do it for the plugin.
			if strings.Contains(string(got), "hairpin") {
				t.Errorf("conflist sets hairpin mode:\n%s", got)
			}
			golden(t, filepath.Join("testdata", "conflist-"+tc.name+".json"), got)
		})
	}
}

func TestNetworkFamilies(t *testing.T) {
	type families struct {
		PodCIDRs, ServiceCIDRs, NodeAddrs, OutsideAddrs []string
	}
	tests := []struct {
		name string
		cfg  NetworkConfig
		want families
	}{
		{
			name: "dual-stack by default, IPv4 first",
			want: families{
				PodCIDRs:     []string{"10.244.0.0/24", "fd00:244::/64"},
				ServiceCIDRs: []string{"10.96.0.0/16", "fd00:96::/112"},
				NodeAddrs:    []string{"192.168.77.1/24", "fd00:77::1/64"},
				OutsideAddrs: []string{"192.168.77.2/24", "fd00:77::2/64"},
			},
		},
		{
			name: "IPv4 only drops every IPv6 setting",
			cfg:  NetworkConfig{IPv4Only: true, PodCIDRv6: "fd00:1::/64", NodeAddrV6: "fd00:2::1/64"},
			want: families{
				PodCIDRs:     []string{"10.244.0.0/24"},
				ServiceCIDRs: []string{"10.96.0.0/16"},
				NodeAddrs:    []string{"192.168.77.1/24"},
				OutsideAddrs: []string{"192.168.77.2/24"},
			},
		},
		{
			name: "own ranges kept",
			cfg:  NetworkConfig{PodCIDR: "10.1.0.0/24", PodCIDRv6: "fd00:1::/64"},
			want: families{
				PodCIDRs:     []string{"10.1.0.0/24", "fd00:1::/64"},
				ServiceCIDRs: []string{"10.96.0.0/16", "fd00:96::/112"},
				NodeAddrs:    []string{"192.168.77.1/24", "fd00:77::1/64"},
				OutsideAddrs: []string{"192.168.77.2/24", "fd00:77::2/64"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pods := tc.cfg.PodCIDRs() // applies defaults to a copy
			c := tc.cfg
			c.setDefaults()
			got := families{
				PodCIDRs:     pods,
				ServiceCIDRs: c.serviceCIDRs(),
				NodeAddrs:    nonEmpty(c.NodeAddr, c.NodeAddrV6),
				OutsideAddrs: nonEmpty(c.OutsideAddr, c.OutsideAddrV6),
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("families (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseAddrsMarksIPv6NoDAD(t *testing.T) {
	addrs, err := parseAddrs("192.168.77.1/24", "", "fd00:77::1/64")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, fmt.Sprintf("%s nodad=%t", a.IPNet, a.Flags&unix.IFA_F_NODAD != 0))
	}
	want := []string{"192.168.77.1/24 nodad=false", "fd00:77::1/64 nodad=true"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if _, err := parseAddrs("fd00:77::1"); err == nil {
		t.Error("an address without prefix length parsed")
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}
