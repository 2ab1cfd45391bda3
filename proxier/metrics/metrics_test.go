package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMetricsServed(t *testing.T) {
	m := New()
	m.SyncDuration.WithLabelValues(Partial).Observe(0.002)
	m.NetworkProgrammingLatency.Observe(0.7)
	m.SyncFailures.WithLabelValues(Full).Inc()
	m.ObjectsProgrammed.WithLabelValues(VirtualServers).Set(3)
	m.ChangesPending.Set(2)
	m.ObjectsSkipped.WithLabelValues("unsupported_protocol").Inc()

	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, l, m.Handler(false)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + l.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`kubevs_sync_duration_seconds_count{mode="partial"} 1`,
		`kubevs_sync_duration_seconds_count{mode="full"} 0`,
		`kubevs_network_programming_duration_seconds_count 1`,
		`kubevs_sync_failures_total{mode="full"} 1`,
		`kubevs_objects_programmed{object="virtual_servers"} 3`,
		`kubevs_objects_programmed{object="set_entries"} 0`,
		`kubevs_changes_pending 2`,
		`kubevs_objects_skipped_total{reason="unsupported_protocol"} 1`,
		`kubevs_last_sync_timestamp_seconds 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
