package desired

import (
	"fmt"
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// BenchmarkComputeService computes one Service with two ports and 10 endpoints, three of
// them local: the per-Service cost of a sync.
func BenchmarkComputeService(b *testing.B) {
	s := service("web", []string{"10.96.0.10"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80), port("dns", v1.ProtocolUDP, 53)})
	var eps []ep
	for i := 0; i < 10; i++ {
		node := "node-b"
		if i < 3 {
			node = "node-a"
		}
		eps = append(eps, ep{addr: fmt.Sprintf("10.244.1.%d", i+1), node: node})
	}
	sl := []*discoveryv1.EndpointSlice{slice("web-1", discoveryv1.AddressTypeIPv4,
		[]discoveryv1.EndpointPort{sport("http", v1.ProtocolTCP, 8080), sport("dns", v1.ProtocolUDP, 5353)}, eps...)}
	opts := Options{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	in, svc := SlicesOf(sl...), APIServiceOf(s)
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := ComputeService(opts, Node{Name: "node-a"}, nil, svc, in); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}
