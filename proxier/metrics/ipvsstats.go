package metrics

// Per-Service traffic from the IPVS counters, read at scrape time. Each virtual server
// belongs to one Service port (its ClusterIP, a NodePort on one node address, an external
// or load-balancer IP); the counters of the virtual servers of one Service, port number,
// protocol and family are summed, so one series stays when node addresses come and go.
// "port" is the virtual server's port: the Service port for ClusterIP, external and
// load-balancer IPs, the node port for NodePorts. A virtual server kubevs does not own (or
// not yet) is not reported.

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// ServiceRef names the Service a virtual server belongs to.
type ServiceRef struct {
	Namespace, Name string
}

// IPVSCollector is a prometheus.Collector of per-Service IPVS counters.
type IPVSCollector struct {
	stats  ipvs.StatsReader
	owners func() map[ipvs.Key]ServiceRef
	descs  [5]*prometheus.Desc
	errors prometheus.Counter
}

var ipvsStatsLabels = []string{"namespace", "name", "port", "protocol", "address_family"}

// NewIPVSCollector returns a collector reading stats at each scrape and mapping virtual
// servers to Services with owners (the last desired state; it must be safe to call from the
// scraping goroutine).
func NewIPVSCollector(stats ipvs.StatsReader, owners func() map[ipvs.Key]ServiceRef) *IPVSCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "service", name), help, ipvsStatsLabels, nil)
	}
	return &IPVSCollector{
		stats:  stats,
		owners: owners,
		descs: [5]*prometheus.Desc{
			d("connections_total", "Connections IPVS scheduled to the Service's endpoints, by Service port (IPVS counters)."),
			d("packets_in_total", "Packets from clients to the Service's endpoints (IPVS counters)."),
			d("packets_out_total", "Packets from the Service's endpoints to clients (IPVS counters)."),
			d("bytes_in_total", "Bytes from clients to the Service's endpoints (IPVS counters)."),
			d("bytes_out_total", "Bytes from the Service's endpoints to clients (IPVS counters)."),
		},
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "service_stats_errors_total",
			Help: "Scrapes that could not read the IPVS counters.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (c *IPVSCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	c.errors.Describe(ch)
}

type statsKey struct {
	ServiceRef
	port     uint16
	protocol string
	family   string
}

// Collect implements prometheus.Collector.
func (c *IPVSCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.errors.Collect(ch)
	stats, err := c.stats.VirtualServerStats()
	if err != nil {
		c.errors.Inc()
		klog.Background().V(2).Info("Reading the IPVS counters failed", "err", err)
		return
	}
	owners := c.owners()
	sums := map[statsKey]ipvs.Stats{}
	for k, st := range stats {
		ref, ok := owners[k]
		if !ok {
			continue
		}
		family := "IPv4"
		if k.Address.Unmap().Is6() {
			family = "IPv6"
		}
		sk := statsKey{ref, k.Port, string(k.Protocol), family}
		sum := sums[sk]
		sum.Connections += st.Connections
		sum.PacketsIn += st.PacketsIn
		sum.PacketsOut += st.PacketsOut
		sum.BytesIn += st.BytesIn
		sum.BytesOut += st.BytesOut
		sums[sk] = sum
	}
	for sk, st := range sums {
		labels := []string{sk.Namespace, sk.Name, strconv.Itoa(int(sk.port)), sk.protocol, sk.family}
		for i, v := range []uint64{st.Connections, st.PacketsIn, st.PacketsOut, st.BytesIn, st.BytesOut} {
			ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, float64(v), labels...)
		}
	}
}
