package metrics

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
)

// Health tracks the proxier's liveness and readiness. Its methods are safe for concurrent use.
//
// Healthy (/healthz): a successful sync happened within twice the sync period. The
// process start, and then the end of the informers' initial lists, count as a sync for
// this purpose, so a proxier gets a grace of 2 x syncPeriod for its first sync.
// Alive (/livez): Healthy, or still waiting for the informers' initial lists: a proxier
// that cannot reach the API server yet is alive, and a liveness probe restarting it would
// not bring the API server back.
// Ready (/readyz): the informers have synced and a first sync succeeded.
//
// As kube-proxy's, /healthz also answers 503 while the own Node is being deleted or carries
// the cluster autoscaler's ToBeDeleted taint (see WatchNode), so load balancers probing
// <node>:10256/healthz stop sending new connections to a node about to go; /livez does
// not, so the process is not restarted for it.
type Health struct {
	clock      clock.PassiveClock
	syncPeriod time.Duration
	started    time.Time
	node       func() *v1.Node
	observe    func(path string, code int)

	mu              sync.Mutex
	lastSync        time.Time
	informersSynced bool
	informedAt      time.Time
}

// NewHealth returns a Health for a proxier whose full resync period is syncPeriod.
// clk may be nil (real clock).
func NewHealth(syncPeriod time.Duration, clk clock.PassiveClock) *Health {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Health{clock: clk, syncPeriod: syncPeriod, started: clk.Now()}
}

// ToBeDeletedTaint is the taint the cluster autoscaler puts on a node it is removing.
const ToBeDeletedTaint = "ToBeDeletedByClusterAutoscaler"

// WatchNode makes /healthz read the own Node from node (nil while unknown) at each request.
// Call it before serving.
func (h *Health) WatchNode(node func() *v1.Node) { h.node = node }

// ObserveRequests makes every response of /healthz, /livez and /readyz call observe with
// the path and status code (for request counters). Call it before serving.
func (h *Health) ObserveRequests(observe func(path string, code int)) { h.observe = observe }

// NodeEligible reports whether n may receive load-balanced traffic: not being deleted and
// without the ToBeDeleted taint. An unknown Node (nil) is eligible.
func NodeEligible(n *v1.Node) bool {
	if n == nil {
		return true
	}
	if n.DeletionTimestamp != nil {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Key == ToBeDeletedTaint {
			return false
		}
	}
	return true
}

// InformersSynced records that the informers delivered their initial lists.
func (h *Health) InformersSynced() {
	h.mu.Lock()
	if !h.informersSynced {
		h.informersSynced, h.informedAt = true, h.clock.Now()
	}
	h.mu.Unlock()
}

// SyncSucceeded records a successful sync now.
func (h *Health) SyncSucceeded() {
	h.mu.Lock()
	h.lastSync = h.clock.Now()
	h.mu.Unlock()
}

// HealthStatus is the JSON body of the health endpoints.
type HealthStatus struct {
	// LastSync is the time of the last successful sync (zero if none yet).
	LastSync time.Time `json:"lastSync"`
	// CurrentTime is when the status was taken.
	CurrentTime time.Time `json:"currentTime"`
	// Healthy: a sync succeeded (or the process started) within 2 x syncPeriod.
	Healthy bool `json:"healthy"`
	// Alive: Healthy, or the informers have not delivered their initial lists yet.
	Alive bool `json:"alive"`
	// InformersSynced: the informers delivered their initial lists.
	InformersSynced bool `json:"informersSynced"`
	// Ready: InformersSynced and a first sync succeeded.
	Ready bool `json:"ready"`
	// NodeEligible: the own Node is neither being deleted nor tainted ToBeDeleted.
	NodeEligible bool `json:"nodeEligible"`
}

// Status returns the current health.
func (h *Health) Status() HealthStatus {
	eligible := true
	if h.node != nil {
		eligible = NodeEligible(h.node())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	ref := h.lastSync
	switch {
	case !ref.IsZero():
	case h.informersSynced:
		ref = h.informedAt
	default:
		ref = h.started
	}
	healthy := now.Sub(ref) <= 2*h.syncPeriod
	return HealthStatus{
		LastSync:        h.lastSync,
		CurrentTime:     now,
		Healthy:         healthy,
		Alive:           healthy || !h.informersSynced,
		InformersSynced: h.informersSynced,
		Ready:           h.informersSynced && !h.lastSync.IsZero(),
		NodeEligible:    eligible,
	}
}

// Handler serves /healthz (200 when healthy and the Node eligible, else 503), /livez (200
// when alive) and /readyz (200 when ready), each with the HealthStatus as JSON.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", h.serve(func(s HealthStatus) bool { return s.Healthy && s.NodeEligible }))
	mux.HandleFunc("/livez", h.serve(func(s HealthStatus) bool { return s.Alive }))
	mux.HandleFunc("/readyz", h.serve(func(s HealthStatus) bool { return s.Ready }))
	return mux
}

func (h *Health) serve(ok func(HealthStatus) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := h.Status()
		code := http.StatusOK
		if !ok(s) {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(s)
		if h.observe != nil {
			h.observe(r.URL.Path, code)
		}
	}
}
