// Package metrics owns what the proxier exposes over HTTP: its Prometheus metrics (namespace
// kubevs) on the metrics address, and the /healthz, /livez and /readyz endpoints on the
// health address.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/internal/httpguard"
)

// Namespace prefixes every metric name.
const Namespace = "kubevs"

// Sync modes, the values of the "mode" label.
const (
	Partial = "partial"
	Full    = "full"
)

// Object kinds, the values of the "object" label of ObjectsProgrammed.
const (
	VirtualServers = "virtual_servers"
	RealServers    = "real_servers"
	VIPs           = "vips"
	SetEntries     = "set_entries"
)

// Metrics holds the proxier's metrics in their own registry.
type Metrics struct {
	Registry *prometheus.Registry
	// SyncDuration observes each sync, by mode (partial or full): the time the kernel lock
	// is held, so what a change may wait.
	SyncDuration *prometheus.HistogramVec
	// ResyncReadDuration observes each read of the kernel made for a periodic full resync
	// beside the syncs (without the lock: no change waits for it).
	ResyncReadDuration prometheus.Histogram
	// ResyncReads counts those reads by kind: full (the budget allowed one), probe (what it
	// covers was as the model holds it), escalated (a probe that found a difference, then a
	// full read); see reconcile/probe.go.
	ResyncReads *prometheus.CounterVec
	// NetworkProgrammingLatency observes, for each EndpointSlice change, the time from its
	// trigger (the last-change-trigger-time annotation) to the end of the sync that
	// programmed it.
	NetworkProgrammingLatency prometheus.Histogram
	// SyncFailures counts failed syncs, by mode.
	SyncFailures *prometheus.CounterVec
	// MemoryReleases and MemoryReleasedBytes count the times the proxier gave freed heap
	// memory back to the operating system, and the bytes it found reclaimable then
	// (proxier/memrelease).
	MemoryReleases      prometheus.Counter
	MemoryReleasedBytes prometheus.Counter
	// ObjectsProgrammed is the number of objects the last sync left programmed, by kind.
	ObjectsProgrammed *prometheus.GaugeVec
	// ChangesPending is the number of Services changed and not yet synced.
	ChangesPending prometheus.Gauge
	// ObjectsSkipped counts parts of Services that became impossible to program, by reason:
	// one part of one Service (an address, a port, an annotation; reason and message) counts
	// once when a computation of the Service first skips it, not again while it stays
	// skipped whatever recomputes the Service (partial, full or periodic syncs, new
	// options), and again only after a computation without it (fixed, or the Service
	// deleted) or in a new process. The reasons are the values of desired.Reason:
	// invalid_scheduler_annotation, unsupported_protocol, ip_family_disabled,
	// invalid_address, external_ip_not_allowed, external_ips_denied,
	// load_balancer_ip_not_allowed, the guard rails' refused_special_address,
	// refused_api_server_address, refused_node_address, refused_pod_cidr,
	// refused_service_cidr, refused_cluster_ip; other.
	ObjectsSkipped *prometheus.CounterVec
	// LastSync is the Unix time of the last successful sync.
	LastSync prometheus.Gauge
	// KubeProxy holds kube-proxy's metrics, under kube-proxy's names.
	KubeProxy *KubeProxy
	// ObjectsQuarantined is the number of virtual servers set aside because their kernel
	// writes keep failing, by reason (the failing operation: add_virtual_server,
	// update_virtual_server, delete_virtual_server, real_servers, other).
	ObjectsQuarantined *prometheus.GaugeVec
	// Quarantines counts virtual servers put in quarantine, by reason.
	Quarantines *prometheus.CounterVec
	// DriftRepaired counts what full syncs found changed by someone else and put back, by
	// object (rules_tables, sets, set_entries, vips, virtual_servers).
	DriftRepaired *prometheus.CounterVec
	// Degraded is 1 for each optional start step the kernel refused ("family inet6",
	// "sysctl <name>"): the proxier runs without it.
	Degraded *prometheus.GaugeVec
	// NodeAPIRefused counts the node API's refused requests and connections, by reason
	// (not_root, bad_request, body_too_large, invalid, ip_not_allowed,
	// too_many_registrations, too_many_connections).
	NodeAPIRefused *prometheus.CounterVec
}

// New returns the metrics registered in a new registry (with the Go and process collectors).
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		SyncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "sync_duration_seconds",
			Help:    "Time a sync of the kernel state took, by mode (partial: changed Services; full: resync).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"mode"}),
		ResyncReadDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "resync_read_duration_seconds",
			Help:    "Time the read of the kernel for a periodic full resync took; it runs beside the syncs, holding no change back.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		ResyncReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "resync_reads_total",
			Help: "Reads of the kernel for a periodic resync, by kind: full (every object), probe (a sample, found as expected), escalated (a probe that found a difference, then a full read).",
		}, []string{"kind"}),
		MemoryReleases: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "memory_releases_total",
			Help: "Times the proxier collected garbage and gave the freed heap memory back to the operating system.",
		}),
		MemoryReleasedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "memory_released_bytes_total",
			Help: "Heap memory the proxier found reclaimable (freed, or garbage) when it released memory, in bytes.",
		}),
		NetworkProgrammingLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "network_programming_duration_seconds",
			Help:    "Time from an EndpointSlice change's trigger time to the end of the sync that programmed it.",
			Buckets: append(prometheus.LinearBuckets(0.25, 0.25, 7), prometheus.ExponentialBuckets(2, 2, 10)...),
		}),
		SyncFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "sync_failures_total",
			Help: "Syncs that failed and will be retried, by mode.",
		}, []string{"mode"}),
		ObjectsProgrammed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "objects_programmed",
			Help: "Objects the proxier wants programmed after the last sync, by kind.",
		}, []string{"object"}),
		ChangesPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "changes_pending",
			Help: "Services changed in the API and not synced yet.",
		}),
		ObjectsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "objects_skipped_total",
			Help: "Parts of Services that became impossible to program, by reason: each part of each Service counts once when it becomes skipped, not again while it stays skipped.",
		}, []string{"reason"}),
		LastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "last_sync_timestamp_seconds",
			Help: "Unix time of the last successful sync.",
		}),
		KubeProxy: newKubeProxy(),
		ObjectsQuarantined: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "objects_quarantined",
			Help: "Virtual servers set aside because their kernel writes keep failing (retried on their own backoff), by reason.",
		}, []string{"reason"}),
		Quarantines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "objects_quarantined_total",
			Help: "Virtual servers put in quarantine, by reason.",
		}, []string{"reason"}),
		DriftRepaired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "drift_repaired_total",
			Help: "Objects full syncs found changed by someone else and put back, by object.",
		}, []string{"object"}),
		NodeAPIRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "node_api_refused_total",
			Help: "Node API requests and connections refused, by reason (nodeapi.Refused*).",
		}, []string{"reason"}),
		Degraded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "degraded",
			Help: "1 for each optional start step the kernel refused (family inet6, sysctl <name>): the proxier runs without it.",
		}, []string{"step"}),
	}
	m.Registry.MustRegister(m.NodeAPIRefused)
	m.Registry.MustRegister(m.SyncDuration, m.ResyncReadDuration, m.ResyncReads, m.NetworkProgrammingLatency, m.SyncFailures,
		m.MemoryReleases, m.MemoryReleasedBytes,
		m.ObjectsProgrammed, m.ChangesPending, m.ObjectsSkipped, m.LastSync,
		m.ObjectsQuarantined, m.Quarantines, m.DriftRepaired, m.Degraded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.Registry.MustRegister(m.KubeProxy.collectors()...)
	m.Registry.MustRegister(restClientCollectors()...)
	for _, mode := range []string{Partial, Full} {
		m.SyncFailures.WithLabelValues(mode)
		m.SyncDuration.WithLabelValues(mode)
	}
	for _, o := range []string{VirtualServers, RealServers, VIPs, SetEntries} {
		m.ObjectsProgrammed.WithLabelValues(o)
	}
	return m
}

func itoa(n int) string { return strconv.Itoa(n) }

// Handler serves the registry in the Prometheus exposition format at /metrics and, with
// profiling (enableProfiling), Go's runtime profiles at /debug/pprof/ (a CPU profile may
// run past the server's write timeout: pprof extends its own write deadline).
func (m *Metrics) Handler(profiling bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Listen opens a TCP listener on addr (host:port).
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// Serve serves h on l until ctx is done, then shuts down within a few seconds. A client is
// held to httpguard.Default: its timeouts, header cap and connection cap.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	return serve(ctx, l, h, httpguard.Default)
}

func serve(ctx context.Context, l net.Listener, h http.Handler, limits httpguard.Limits) error {
	srv := limits.Server(h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	klog.FromContext(ctx).Info("Serving", "address", l.Addr().String())
	err := srv.Serve(limits.Listener(l))
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve %s: %w", l.Addr(), err)
}
