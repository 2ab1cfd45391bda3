package metrics

// kube-proxy's metrics under kube-proxy's names, buckets and labels (pkg/proxy/metrics of
// Kubernetes v1.36), beside kubevs's own, so that kube-proxy's dashboards and alerts keep
// working on a node kubevs serves. One kubevs sync programs both IP families at once, so
// the per-family metrics get the same observation for each family the proxier serves, as
// kube-proxy's two per-family proxiers would each report their own.
//
// kubevs tracks changes per Service (a Service's EndpointSlices included), so:
//   - sync_proxy_rules_service_changes_pending/_total count Services changed;
//   - sync_proxy_rules_endpoint_changes_total counts the EndpointSlice updates that carry a
//     trigger time, _pending those of them not programmed yet.

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const kubeProxySubsystem = "kubeproxy"

// KubeProxy holds kube-proxy's metrics.
type KubeProxy struct {
	SyncDuration           *prometheus.HistogramVec
	LastTimestamp          *prometheus.GaugeVec
	LastQueuedTimestamp    *prometheus.GaugeVec
	NetworkProgramming     *prometheus.HistogramVec
	ServiceChangesPending  prometheus.Gauge
	ServiceChangesTotal    prometheus.Counter
	EndpointChangesPending prometheus.Gauge
	EndpointChangesTotal   prometheus.Counter
	HealthzTotal           *prometheus.CounterVec
	LivezTotal             *prometheus.CounterVec

	mu       sync.Mutex
	families []string
}

// networkProgrammingBuckets are kube-proxy's: 0, 0.25s, 0.5s, every second to 59s, every
// 5s to 115s, every 30s to 5 minutes.
func networkProgrammingBuckets() []float64 {
	b := []float64{0}
	b = append(b, prometheus.LinearBuckets(0.25, 0.25, 2)...)
	b = append(b, prometheus.LinearBuckets(1, 1, 59)...)
	b = append(b, prometheus.LinearBuckets(60, 5, 12)...)
	return append(b, prometheus.LinearBuckets(120, 30, 7)...)
}

func newKubeProxy() *KubeProxy {
	family := []string{"ip_family"}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: kubeProxySubsystem, Name: name, Help: help})
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Subsystem: kubeProxySubsystem, Name: name, Help: help})
	}
	return &KubeProxy{
		SyncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: kubeProxySubsystem, Name: "sync_proxy_rules_duration_seconds",
			Help: "SyncProxyRules latency in seconds", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, family),
		LastTimestamp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: kubeProxySubsystem, Name: "sync_proxy_rules_last_timestamp_seconds",
			Help: "The last time proxy rules were successfully synced",
		}, family),
		LastQueuedTimestamp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: kubeProxySubsystem, Name: "sync_proxy_rules_last_queued_timestamp_seconds",
			Help: "The last time a sync of proxy rules was queued",
		}, family),
		NetworkProgramming: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: kubeProxySubsystem, Name: "network_programming_duration_seconds",
			Help: "In Cluster Network Programming Latency in seconds", Buckets: networkProgrammingBuckets(),
		}, family),
		ServiceChangesPending:  gauge("sync_proxy_rules_service_changes_pending", "Pending proxy rules Service changes"),
		ServiceChangesTotal:    counter("sync_proxy_rules_service_changes_total", "Cumulative proxy rules Service changes"),
		EndpointChangesPending: gauge("sync_proxy_rules_endpoint_changes_pending", "Pending proxy rules Endpoint changes"),
		EndpointChangesTotal:   counter("sync_proxy_rules_endpoint_changes_total", "Cumulative proxy rules Endpoint changes"),
		HealthzTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: kubeProxySubsystem, Name: "proxy_healthz_total", Help: "Cumulative proxy healthz HTTP status",
		}, []string{"code"}),
		LivezTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: kubeProxySubsystem, Name: "proxy_livez_total", Help: "Cumulative proxy livez HTTP status",
		}, []string{"code"}),
		families: []string{"IPv4"},
	}
}

func (k *KubeProxy) collectors() []prometheus.Collector {
	return []prometheus.Collector{k.SyncDuration, k.LastTimestamp, k.LastQueuedTimestamp, k.NetworkProgramming,
		k.ServiceChangesPending, k.ServiceChangesTotal, k.EndpointChangesPending, k.EndpointChangesTotal,
		k.HealthzTotal, k.LivezTotal}
}

// SetFamilies sets the IP families ("IPv4", "IPv6") the per-family metrics are reported for.
func (k *KubeProxy) SetFamilies(families []string) {
	k.mu.Lock()
	k.families = append([]string(nil), families...)
	k.mu.Unlock()
}

func (k *KubeProxy) eachFamily(f func(family string)) {
	k.mu.Lock()
	fams := k.families
	k.mu.Unlock()
	for _, fam := range fams {
		f(fam)
	}
}

// Queued records that a sync was requested at now.
func (k *KubeProxy) Queued(now time.Time) {
	k.eachFamily(func(f string) { k.LastQueuedTimestamp.WithLabelValues(f).Set(float64(now.UnixNano()) / 1e9) })
}

// Taken records the changes a sync took: services Services and endpoints EndpointSlice
// updates with a trigger time.
func (k *KubeProxy) Taken(services, endpoints int) {
	k.ServiceChangesTotal.Add(float64(services))
	k.EndpointChangesTotal.Add(float64(endpoints))
}

// Synced records a sync of duration d that ended at end (successful or not), and what
// stays pending after it.
func (k *KubeProxy) Synced(d time.Duration, servicesPending, endpointsPending int) {
	k.eachFamily(func(f string) { k.SyncDuration.WithLabelValues(f).Observe(d.Seconds()) })
	k.ServiceChangesPending.Set(float64(servicesPending))
	k.EndpointChangesPending.Set(float64(endpointsPending))
}

// Succeeded records a successful sync that ended at end and programmed the EndpointSlice
// changes of the given trigger times.
func (k *KubeProxy) Succeeded(end time.Time, triggers []time.Time) {
	k.EndpointChangesPending.Set(0)
	k.eachFamily(func(f string) {
		k.LastTimestamp.WithLabelValues(f).Set(float64(end.UnixNano()) / 1e9)
		for _, t := range triggers {
			if lat := end.Sub(t); lat >= 0 {
				k.NetworkProgramming.WithLabelValues(f).Observe(lat.Seconds())
			}
		}
	})
}

// HealthRequest counts a response of the health server (for Health.ObserveRequests).
func (k *KubeProxy) HealthRequest(path string, code int) {
	switch path {
	case "/healthz":
		k.HealthzTotal.WithLabelValues(itoa(code)).Inc()
	case "/livez":
		k.LivezTotal.WithLabelValues(itoa(code)).Inc()
	}
}
