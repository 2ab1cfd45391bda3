package metrics

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
)

func TestIPVSCollector(t *testing.T) {
	key := func(addr string, proto ipvs.Protocol, port uint16) ipvs.Key {
		return ipvs.Key{Address: netip.MustParseAddr(addr), Protocol: proto, Port: port}
	}
	web := ServiceRef{Namespace: "default", Name: "web"}
	dns := ServiceRef{Namespace: "kube-system", Name: "kube-dns"}
	owned := map[ipvs.Key]ServiceRef{
		key("10.96.0.10", ipvs.TCP, 80):     web,
		key("fd00::10", ipvs.TCP, 80):       web,
		key("192.168.1.5", ipvs.TCP, 30080): web, // NodePort on two node addresses: one series
		key("10.0.0.5", ipvs.TCP, 30080):    web,
		key("10.96.0.53", ipvs.UDP, 53):     dns,
	}
	f := ipvstest.NewFake()
	stats := map[ipvs.Key]ipvs.Stats{
		key("10.96.0.10", ipvs.TCP, 80):     {Connections: 10, PacketsIn: 100, PacketsOut: 90, BytesIn: 1000, BytesOut: 9000},
		key("fd00::10", ipvs.TCP, 80):       {Connections: 1, PacketsIn: 2, PacketsOut: 3, BytesIn: 4, BytesOut: 5},
		key("192.168.1.5", ipvs.TCP, 30080): {Connections: 2, PacketsIn: 20, PacketsOut: 20, BytesIn: 200, BytesOut: 200},
		key("10.0.0.5", ipvs.TCP, 30080):    {Connections: 3, PacketsIn: 30, PacketsOut: 30, BytesIn: 300, BytesOut: 300},
		key("10.96.0.53", ipvs.UDP, 53):     {Connections: 7, PacketsIn: 7, PacketsOut: 7, BytesIn: 700, BytesOut: 1400},
		key("10.1.2.3", ipvs.TCP, 8080):     {Connections: 99}, // not kubevs's: not reported
	}
	for k, st := range stats {
		if err := f.AddVirtualServer(ipvs.VirtualServer{Key: k, Scheduler: "rr"}); err != nil {
			t.Fatal(err)
		}
		if err := f.SetStats(k, st); err != nil {
			t.Fatal(err)
		}
	}
	c := NewIPVSCollector(f, func() map[ipvs.Key]ServiceRef { return owned })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	exp := `
# HELP kubevs_service_connections_total Connections IPVS scheduled to the Service's endpoints, by Service port (IPVS counters).
# TYPE kubevs_service_connections_total counter
kubevs_service_connections_total{address_family="IPv4",name="kube-dns",namespace="kube-system",port="53",protocol="UDP"} 7
kubevs_service_connections_total{address_family="IPv4",name="web",namespace="default",port="30080",protocol="TCP"} 5
kubevs_service_connections_total{address_family="IPv4",name="web",namespace="default",port="80",protocol="TCP"} 10
kubevs_service_connections_total{address_family="IPv6",name="web",namespace="default",port="80",protocol="TCP"} 1
# HELP kubevs_service_bytes_out_total Bytes from the Service's endpoints to clients (IPVS counters).
# TYPE kubevs_service_bytes_out_total counter
kubevs_service_bytes_out_total{address_family="IPv4",name="kube-dns",namespace="kube-system",port="53",protocol="UDP"} 1400
kubevs_service_bytes_out_total{address_family="IPv4",name="web",namespace="default",port="30080",protocol="TCP"} 500
kubevs_service_bytes_out_total{address_family="IPv4",name="web",namespace="default",port="80",protocol="TCP"} 9000
kubevs_service_bytes_out_total{address_family="IPv6",name="web",namespace="default",port="80",protocol="TCP"} 5
# HELP kubevs_service_stats_errors_total Scrapes that could not read the IPVS counters.
# TYPE kubevs_service_stats_errors_total counter
kubevs_service_stats_errors_total 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(exp),
		"kubevs_service_connections_total", "kubevs_service_bytes_out_total", "kubevs_service_stats_errors_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "kubevs_service_packets_in_total"); n != 4 {
		t.Errorf("packets_in series: %d, want 4", n)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("pedantic gather: %v", err)
	}
}
