package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const exposition = `# HELP kubeproxy_sync_proxy_rules_duration_seconds SyncProxyRules latency in seconds
# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram
kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family="IPv4",le="0.001"} 3
kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family="IPv4"} 1.25
kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"} 42
kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family="IPv6"} 0.5
kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv6"} 40
kubeproxy_sync_proxy_rules_duration_seconds_count_extra 7
kubevs_sync_duration_seconds_count{mode="full"} 2
kubevs_sync_duration_seconds_sum{mode="full"} 0.5
kubevs_sync_duration_seconds_count{mode="partial"} 40
kubevs_sync_duration_seconds_count{mode="partialx"} 1000
kubevs_resync_read_duration_seconds_count 3
kubevs_resync_read_duration_seconds_sum 0.75
kubevs_resync_reads_total{kind="full"} 1
kubevs_resync_reads_total{kind="probe"} 2
`

func TestMetricSum(t *testing.T) {
	for _, tc := range []struct {
		name, metric string
		match        map[string]string
		want         float64
		found        bool
	}{
		{"both families", "kubeproxy_sync_proxy_rules_duration_seconds_count", nil, 82, true},
		{"IPv4", "kubeproxy_sync_proxy_rules_duration_seconds_count", ipv4, 42, true},
		{"plain", "kubeproxy_sync_proxy_rules_duration_seconds_count_extra", nil, 7, true},
		{"all labels", "kubevs_sync_duration_seconds_count", nil, 1042, true},
		{"one label", "kubevs_sync_duration_seconds_count", map[string]string{"mode": "partial"}, 40, true},
		{"no such label value", "kubevs_sync_duration_seconds_count", map[string]string{"mode": "none"}, 0, false},
		{"prefix of another name only", "kubeproxy_sync_proxy_rules_duration", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, found, err := MetricSum(exposition, tc.metric, tc.match)
			if err != nil || got != tc.want || found != tc.found {
				t.Errorf("MetricSum = %v, %v, %v; want %v, %v, nil", got, found, err, tc.want, tc.found)
			}
		})
	}
	if _, _, err := MetricSum("m{a=\"b\" 1\n", "m", nil); err == nil {
		t.Error("unterminated labels: want an error")
	}
	if _, _, err := MetricSum("m one\n", "m", nil); err == nil {
		t.Error("bad value: want an error")
	}
}

func TestSyncCount(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
			return
		case "/empty":
			fmt.Fprintln(w, "# nothing")
			return
		case "/kube-proxy":
			fmt.Fprint(w, strings.Split(exposition, "kubevs_")[0])
			return
		}
		fmt.Fprint(w, exposition)
	}))
	defer srv.Close()
	got, err := syncCount(context.Background(), srv.URL+"/metrics")
	if err != nil || got != 42 {
		t.Errorf("syncCount = %v, %v; want 42", got, err)
	}
	if n, err := syncCount(context.Background(), srv.URL+"/empty"); n != 0 || err != nil {
		t.Errorf("no sync yet: syncCount = %v, %v; want 0, nil", n, err)
	}
	if _, err := syncCount(context.Background(), srv.URL+"/missing"); err == nil {
		t.Error("404: want an error")
	}
	if n, sec, err := fullSyncs(context.Background(), srv.URL+"/metrics"); n != 2 || sec != 0.5 || err != nil {
		t.Errorf("fullSyncs (kubevs) = %v, %v, %v; want 2, 0.5", n, sec, err)
	}
	if n, sec, err := fullSyncs(context.Background(), srv.URL+"/kube-proxy"); n != 42 || sec != 1.25 || err != nil {
		t.Errorf("fullSyncs (kube-proxy) = %v, %v, %v; want 42, 1.25", n, sec, err)
	}
	if n, sec, err := fullSyncs(context.Background(), srv.URL+"/empty"); n != 0 || sec != 0 || err != nil {
		t.Errorf("no sync yet: fullSyncs = %v, %v, %v; want 0, 0, nil", n, sec, err)
	}
	if n, sec, err := resyncReads(context.Background(), srv.URL+"/metrics"); n != 3 || sec != 0.75 || err != nil {
		t.Errorf("resyncReads (kubevs) = %v, %v, %v; want 3, 0.75", n, sec, err)
	}
	if n, sec, err := resyncReads(context.Background(), srv.URL+"/kube-proxy"); n != 0 || sec != 0 || err != nil {
		t.Errorf("resyncReads (kube-proxy) = %v, %v, %v; want 0, 0, nil", n, sec, err)
	}
	kinds, err := readKinds(context.Background(), srv.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readKindsNote("idle", map[string]float64{"full": 1}, kinds), "idle resync reads: probe 2"; got != want {
		t.Errorf("readKindsNote = %q, want %q", got, want)
	}
	none, err := readKinds(context.Background(), srv.URL+"/kube-proxy")
	if err != nil || readKindsNote("idle", none, none) != "" {
		t.Errorf("kube-proxy: readKinds = %v, %v; want no reads", none, err)
	}
}

func TestKubeProxySyncs(t *testing.T) {
	if n, s, found, err := KubeProxySyncs(exposition); err != nil || !found || n != 42 || s != 1.25 {
		t.Errorf("KubeProxySyncs = %v, %v, %v, %v; want the IPv4 family's 42 syncs, 1.25 s", n, s, found, err)
	}
	if _, _, found, err := KubeProxySyncs("kubevs_sync_duration_seconds_count{mode=\"full\"} 2\n"); found || err != nil {
		t.Errorf("no histogram: found %v, err %v; want not found, no error", found, err)
	}
	if _, _, _, err := KubeProxySyncs("kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 4\n"); err == nil {
		t.Error("a count without its sum: no error")
	}
}
