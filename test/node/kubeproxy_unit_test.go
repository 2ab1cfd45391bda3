//go:build nodee2e

package node

import (
	"encoding/json"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"
)

// TestBridgeConflist runs on the host (go test -tags nodee2e -run TestBridgeConflist): the kube-proxy
// column's conflist is one libcni loads, bridge then portmap, with hairpin and the Node's range.
func TestBridgeConflist(t *testing.T) {
	data, err := bridgeConflist("10.244.0.0/24")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatalf("libcni: %v\n%s", err, data)
	}
	var types []string
	for _, p := range conf.Plugins {
		types = append(types, p.Network.Type)
	}
	if diff := cmp.Diff([]string{"bridge", "portmap"}, types); diff != "" {
		t.Errorf("plugins (-want +got):\n%s", diff)
	}
	var bridge struct {
		IsGateway, HairpinMode, IPMasq bool
		IPAM                           struct {
			Type   string
			Ranges [][]struct{ Subnet string }
		}
	}
	if err := json.Unmarshal(conf.Plugins[0].Bytes, &bridge); err != nil {
		t.Fatal(err)
	}
	if !bridge.IsGateway || !bridge.HairpinMode || bridge.IPMasq || bridge.IPAM.Type != "host-local" ||
		len(bridge.IPAM.Ranges) != 1 || len(bridge.IPAM.Ranges[0]) != 1 || bridge.IPAM.Ranges[0][0].Subnet != "10.244.0.0/24" {
		t.Errorf("bridge plugin config: %+v\n%s", bridge, conf.Plugins[0].Bytes)
	}
	if _, err := bridgeConflist(""); err == nil {
		t.Error("bridgeConflist(\"\"): no error")
	}
}

func TestParseSyncCount(t *testing.T) {
	for _, tc := range []struct {
		name, page string
		want       float64
		wantErr    bool
	}{
		{name: "synced", page: "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram\n" +
			"kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"+Inf\"} 3\n" +
			"kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv4\"} 0.25\n" +
			"kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 3\n" +
			"kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv6\"} 2\n", want: 3},
		{name: "not yet", page: "kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv4\"} 0\n" +
			"kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 0\n", want: 0},
		{name: "no histogram yet", page: "kubeproxy_sync_proxy_rules_last_timestamp_seconds 0\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSyncCount([]byte(tc.page))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseSyncCount = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseSyncMean(t *testing.T) {
	// kube-proxy's idle IPv6 proxier syncs too (30 syncs beside 46 in the two-node run): only
	// the IPv4 family counts.
	page := "kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"+Inf\"} 4\n" +
		"kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv4\"} 10\n" +
		"kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 4\n" +
		"kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv6\"} 30\n" +
		"kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv6\"} 3\n"
	if n, mean, err := parseSyncMean([]byte(page)); err != nil || n != 4 || mean != 2.5 {
		t.Errorf("parseSyncMean = %v, %v, %v; want 4, 2.5", n, mean, err)
	}
	for _, bad := range []string{
		"kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 4\n",
		"kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv6\"} 9\nkubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv6\"} 4\n",
		"kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv4\"} 0\nkubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 0\n",
	} {
		if _, _, err := parseSyncMean([]byte(bad)); err == nil {
			t.Errorf("parseSyncMean(%q): no error", bad)
		}
	}
}
