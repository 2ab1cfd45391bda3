package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestKubeProxyMetrics(t *testing.T) {
	m := New()
	k := m.KubeProxy
	k.SetFamilies([]string{"IPv4", "IPv6"})
	t0 := time.Unix(1700000000, 0)
	k.Queued(t0)
	k.Taken(3, 2)
	k.Synced(3*time.Millisecond, 1, 0)
	k.Succeeded(t0.Add(time.Second), []time.Time{t0.Add(-500 * time.Millisecond), t0.Add(2 * time.Second)})
	k.HealthRequest("/healthz", 200)
	k.HealthRequest("/healthz", 503)
	k.HealthRequest("/livez", 200)
	k.HealthRequest("/readyz", 200)

	exp := `
# HELP kubeproxy_proxy_healthz_total Cumulative proxy healthz HTTP status
# TYPE kubeproxy_proxy_healthz_total counter
kubeproxy_proxy_healthz_total{code="200"} 1
kubeproxy_proxy_healthz_total{code="503"} 1
# HELP kubeproxy_proxy_livez_total Cumulative proxy livez HTTP status
# TYPE kubeproxy_proxy_livez_total counter
kubeproxy_proxy_livez_total{code="200"} 1
# HELP kubeproxy_sync_proxy_rules_endpoint_changes_pending Pending proxy rules Endpoint changes
# TYPE kubeproxy_sync_proxy_rules_endpoint_changes_pending gauge
kubeproxy_sync_proxy_rules_endpoint_changes_pending 0
# HELP kubeproxy_sync_proxy_rules_endpoint_changes_total Cumulative proxy rules Endpoint changes
# TYPE kubeproxy_sync_proxy_rules_endpoint_changes_total counter
kubeproxy_sync_proxy_rules_endpoint_changes_total 2
# HELP kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds The last time a sync of proxy rules was queued
# TYPE kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds gauge
kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv4"} 1.7e+09
kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv6"} 1.7e+09
# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds The last time proxy rules were successfully synced
# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge
kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"} 1.700000001e+09
kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv6"} 1.700000001e+09
# HELP kubeproxy_sync_proxy_rules_service_changes_pending Pending proxy rules Service changes
# TYPE kubeproxy_sync_proxy_rules_service_changes_pending gauge
kubeproxy_sync_proxy_rules_service_changes_pending 1
# HELP kubeproxy_sync_proxy_rules_service_changes_total Cumulative proxy rules Service changes
# TYPE kubeproxy_sync_proxy_rules_service_changes_total counter
kubeproxy_sync_proxy_rules_service_changes_total 3
`
	names := []string{
		"kubeproxy_proxy_healthz_total", "kubeproxy_proxy_livez_total",
		"kubeproxy_sync_proxy_rules_endpoint_changes_pending", "kubeproxy_sync_proxy_rules_endpoint_changes_total",
		"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
		"kubeproxy_sync_proxy_rules_service_changes_pending", "kubeproxy_sync_proxy_rules_service_changes_total",
	}
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(exp), names...); err != nil {
		t.Error(err)
	}

	// Histograms: kube-proxy's buckets, one observation per family; the trigger in the
	// future (clock skew) is not observed.
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		var wantBuckets int
		var first, last float64
		switch mf.GetName() {
		case "kubeproxy_sync_proxy_rules_duration_seconds":
			wantBuckets, first, last = 15, 0.001, 16.384
		case "kubeproxy_network_programming_duration_seconds":
			wantBuckets, first, last = 81, 0, 300
		default:
			continue
		}
		if len(mf.Metric) != 2 {
			t.Errorf("%s: %d series, want one per family", mf.GetName(), len(mf.Metric))
		}
		for _, s := range mf.Metric {
			h := s.GetHistogram()
			b := h.GetBucket()
			if len(b) != wantBuckets || b[0].GetUpperBound() != first || b[len(b)-1].GetUpperBound() != last {
				t.Errorf("%s: %d buckets %v..%v, want %d %v..%v", mf.GetName(), len(b), b[0].GetUpperBound(), b[len(b)-1].GetUpperBound(), wantBuckets, first, last)
			}
			if h.GetSampleCount() != 1 {
				t.Errorf("%s%v: %d samples, want 1", mf.GetName(), s.GetLabel(), h.GetSampleCount())
			}
		}
	}
}

func TestRESTClientMetrics(t *testing.T) {
	m := New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"NodeList","apiVersion":"v1","items":[]}`))
	}))
	defer srv.Close()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if n := testutil.ToFloat64(restRequests.WithLabelValues("200", "GET", host)); n != 1 {
		t.Errorf("rest_client_requests_total{code=200,method=GET} = %v, want 1", n)
	}
	if n, err := testutil.GatherAndCount(m.Registry, "rest_client_request_duration_seconds"); err != nil || n == 0 {
		t.Errorf("rest_client_request_duration_seconds: %d series, %v", n, err)
	}
}
