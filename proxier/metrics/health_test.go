package metrics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestHealthEndpoints(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		informed bool
		syncAt   time.Duration // < 0: no sync
		now      time.Duration
		// want codes of /healthz, /livez, /readyz
		want [3]int
	}{
		{"just started", false, -1, 0, [3]int{200, 200, 503}},
		// The API server is unreachable: no liveness restart loop while waiting for it.
		{"still waiting for the API server", false, -1, 10 * time.Minute, [3]int{503, 200, 503}},
		{"start grace over without a sync", true, -1, 61 * time.Second, [3]int{503, 503, 503}},
		{"informers synced, no sync yet", true, -1, time.Second, [3]int{200, 200, 503}},
		{"synced", true, time.Second, 2 * time.Second, [3]int{200, 200, 200}},
		{"synced long ago", true, time.Second, 62 * time.Second, [3]int{503, 503, 200}},
		{"synced exactly 2 x syncPeriod ago", true, time.Second, 61 * time.Second, [3]int{200, 200, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(t0)
			h := NewHealth(30*time.Second, clk)
			if tt.informed {
				h.InformersSynced()
			}
			if tt.syncAt >= 0 {
				clk.SetTime(t0.Add(tt.syncAt))
				h.SyncSucceeded()
			}
			clk.SetTime(t0.Add(tt.now))
			var got [3]int
			for i, path := range []string{"/healthz", "/livez", "/readyz"} {
				rec := httptest.NewRecorder()
				h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				got[i] = rec.Code
				var s HealthStatus
				if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
					t.Fatalf("%s: body %q: %v", path, rec.Body, err)
				}
				if !s.CurrentTime.Equal(t0.Add(tt.now)) {
					t.Errorf("%s: currentTime = %v", path, s.CurrentTime)
				}
				if tt.syncAt >= 0 && !s.LastSync.Equal(t0.Add(tt.syncAt)) {
					t.Errorf("%s: lastSync = %v", path, s.LastSync)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("status codes of /healthz /livez /readyz (-want +got):\n%s", diff)
			}
		})
	}
}

// The first sync's grace starts when the informers synced, not at the process start: a
// proxier that waited long for the API server gets 2 x syncPeriod for its first sync.
func TestHealthGraceFromInformersSynced(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(t0)
	h := NewHealth(30*time.Second, clk)
	clk.SetTime(t0.Add(5 * time.Minute))
	h.InformersSynced()
	clk.SetTime(t0.Add(5*time.Minute + 59*time.Second))
	if s := h.Status(); !s.Healthy || !s.Alive || s.Ready {
		t.Errorf("59 s after the informers synced, no sync: %+v, want healthy, alive, not ready", s)
	}
	clk.SetTime(t0.Add(6*time.Minute + time.Second))
	if s := h.Status(); s.Healthy || s.Alive {
		t.Errorf("61 s after the informers synced, no sync: %+v, want neither healthy nor alive", s)
	}
}

func TestHealthzFollowsTheNode(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		name string
		node *v1.Node
		// want codes of /healthz, /livez, /readyz
		want [3]int
	}{
		{"node unknown", nil, [3]int{200, 200, 200}},
		{"node serving", &v1.Node{}, [3]int{200, 200, 200}},
		{"other taints", &v1.Node{Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: v1.TaintEffectNoSchedule}}}}, [3]int{200, 200, 200}},
		{"tainted ToBeDeleted", &v1.Node{Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: ToBeDeletedTaint, Effect: v1.TaintEffectNoSchedule}}}}, [3]int{503, 200, 200}},
		{"being deleted", &v1.Node{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}}, [3]int{503, 200, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHealth(30*time.Second, nil)
			h.InformersSynced()
			h.SyncSucceeded()
			h.WatchNode(func() *v1.Node { return tc.node })
			var seen []string
			h.ObserveRequests(func(path string, code int) { seen = append(seen, fmt.Sprintf("%s %d", path, code)) })
			var got [3]int
			var want []string
			for i, path := range []string{"/healthz", "/livez", "/readyz"} {
				rec := httptest.NewRecorder()
				h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				got[i] = rec.Code
				want = append(want, fmt.Sprintf("%s %d", path, tc.want[i]))
				var s HealthStatus
				if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
					t.Fatal(err)
				}
				if s.NodeEligible != (tc.want[0] == 200) {
					t.Errorf("%s: nodeEligible %v", path, s.NodeEligible)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("status codes of /healthz /livez /readyz (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, seen); diff != "" {
				t.Errorf("observed requests (-want +got):\n%s", diff)
			}
		})
	}
}
