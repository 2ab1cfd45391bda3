package desired

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset"
)

func ptr[T any](v T) *T { return &v }

type svcOpt = fixture.ServiceOption

// service is the Service "ns/name" on ips (the first is spec.clusterIP).
func service(name string, ips []string, ports []v1.ServicePort, opts ...svcOpt) *v1.Service {
	return fixture.Service("ns/"+name, append([]svcOpt{fixture.ClusterIPs(ips...), fixture.Ports(ports...)}, opts...)...)
}

// port and sport are a Service port and an EndpointSlice port, short for the tables below.
var (
	port  = fixture.Port
	sport = fixture.SlicePort
)

// ep is an endpoint: its address, node (none if empty) and conditions (unset if nil).
type ep struct {
	addr                    string
	node                    string
	ready, serving, termina *bool
}

func (e ep) endpoint() discoveryv1.Endpoint {
	var opts []fixture.EndpointOption
	if e.node != "" {
		opts = append(opts, fixture.OnNode(e.node))
	}
	for _, c := range []struct {
		set func(bool) fixture.EndpointOption
		v   *bool
	}{{fixture.Ready, e.ready}, {fixture.Serving, e.serving}, {fixture.Terminating, e.termina}} {
		if c.v != nil {
			opts = append(opts, c.set(*c.v))
		}
	}
	return fixture.Endpoint(e.addr, opts...)
}

// slice is the EndpointSlice "ns/name" of address type at with ports and endpoints eps.
func slice(name string, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...ep) *discoveryv1.EndpointSlice {
	var endpoints []discoveryv1.Endpoint
	for _, e := range eps {
		endpoints = append(endpoints, e.endpoint())
	}
	return fixture.Slice("ns/"+name, fixture.AddressType(at), fixture.SlicePorts(ports...), fixture.Endpoints(endpoints...))
}

var (
	yes = ptr(true)
	no  = ptr(false)
)

func TestComputeService(t *testing.T) {
	node := Node{Name: "node-a"}
	local := PodSet{netip.MustParseAddr("10.244.0.7"): {}}
	v4 := Options{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	dual := Options{Families: []ipset.Family{ipset.IPv4, ipset.IPv6}, Scheduler: "wrr"}
	web := []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}
	webSlice := []discoveryv1.EndpointPort{sport("http", v1.ProtocolTCP, 8080)}
	tests := []struct {
		name string
		opts Options
		svc  *v1.Service
		sl   []*discoveryv1.EndpointSlice
	}{
		{
			name: "clusterip-tcp-local-endpoints",
			opts: v4,
			svc:  service("web", []string{"10.96.0.10"}, web),
			sl: []*discoveryv1.EndpointSlice{slice("web-1", discoveryv1.AddressTypeIPv4, webSlice,
				ep{addr: "10.244.1.5", node: "node-b"},
				ep{addr: "10.244.0.3", node: "node-a", ready: yes},
				ep{addr: "10.244.0.7"}, // local because the plugin registered it
				ep{addr: "10.244.2.9", node: "node-c", ready: no, serving: yes},
			)},
		},
		{
			name: "ports-matched-by-name",
			opts: v4,
			svc: service("dns", []string{"10.96.0.53"}, []v1.ServicePort{
				port("dns", v1.ProtocolUDP, 53), port("dns-tcp", v1.ProtocolTCP, 53), port("metrics", v1.ProtocolTCP, 9153),
			}),
			sl: []*discoveryv1.EndpointSlice{
				slice("dns-1", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{
					sport("dns-tcp", v1.ProtocolTCP, 5353), sport("dns", v1.ProtocolUDP, 5353),
				}, ep{addr: "10.244.3.1", node: "node-b"}, ep{addr: "10.244.3.2", node: "node-a"}),
				// The same endpoint in a second slice is counted once; this slice also serves metrics.
				slice("dns-2", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{
					sport("dns", v1.ProtocolUDP, 5353), sport("metrics", v1.ProtocolTCP, 9153),
				}, ep{addr: "10.244.3.2", node: "node-a"}),
			},
		},
		{
			name: "terminating-fallback",
			opts: v4,
			svc:  service("web", []string{"10.96.0.10"}, web),
			sl: []*discoveryv1.EndpointSlice{slice("web-1", discoveryv1.AddressTypeIPv4, webSlice,
				ep{addr: "10.244.1.5", ready: no, serving: yes, termina: yes},
				ep{addr: "10.244.1.6", ready: no, serving: no, termina: yes},
				ep{addr: "10.244.1.7", ready: no, serving: yes}, // serving, not terminating: starting up
			)},
		},
		{
			name: "no-endpoints",
			opts: v4,
			svc:  service("web", []string{"10.96.0.10"}, web),
		},
		{
			name: "affinity-and-scheduler",
			opts: v4,
			svc: service("sticky", []string{"10.96.0.11"}, web, func(s *v1.Service) {
				s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
				s.Annotations = map[string]string{SchedulerAnnotation: "lc"}
			}),
			sl: []*discoveryv1.EndpointSlice{slice("s", discoveryv1.AddressTypeIPv4, webSlice, ep{addr: "10.244.1.5"})},
		},
		{
			name: "affinity-timeout-bad-scheduler",
			opts: v4,
			svc: service("sticky", []string{"10.96.0.11"}, web, func(s *v1.Service) {
				s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr(int32(60))}}
				s.Annotations = map[string]string{SchedulerAnnotation: "fastest"}
			}),
			sl: []*discoveryv1.EndpointSlice{slice("s", discoveryv1.AddressTypeIPv4, webSlice, ep{addr: "10.244.1.5"})},
		},
		{
			name: "dual-stack-sctp",
			opts: dual,
			svc:  service("ds", []string{"fd00:96::10", "10.96.0.12"}, []v1.ServicePort{port("s", v1.ProtocolSCTP, 9)}),
			sl: []*discoveryv1.EndpointSlice{
				slice("ds-4", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{sport("s", v1.ProtocolSCTP, 9999)}, ep{addr: "10.244.0.9", node: "node-a"}),
				slice("ds-6", discoveryv1.AddressTypeIPv6, []discoveryv1.EndpointPort{sport("s", v1.ProtocolSCTP, 9999)}, ep{addr: "fd00:244::9", node: "node-a"}, ep{addr: "fd00:244::10", node: "node-b"}),
			},
		},
		{
			name: "ipv6-not-enabled",
			opts: v4,
			svc:  service("ds", []string{"10.96.0.12", "fd00:96::10"}, web),
			sl:   []*discoveryv1.EndpointSlice{slice("s", discoveryv1.AddressTypeIPv4, webSlice, ep{addr: "10.244.1.5"}, ep{addr: "bogus"})},
		},
		{name: "ignored-headless", opts: v4, svc: service("h", []string{"None"}, web)},
		{name: "ignored-externalname", opts: v4, svc: service("x", []string{""}, nil, func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeExternalName })},
		{name: "ignored-proxy-name", opts: v4, svc: service("p", []string{"10.96.0.13"}, web, func(s *v1.Service) {
			s.Labels = map[string]string{ServiceProxyNameLabel: "other"}
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			computeGolden(t, "service-"+tc.name, tc.opts, node, local, tc.svc, tc.sl)
		})
	}
}

// computeGolden computes svc and compares its text, errors included, with the golden file
// name; a second computation must print the same. It returns the first result.
func computeGolden(t *testing.T, name string, opts Options, node Node, local PodSet, svc *v1.Service, sl []*discoveryv1.EndpointSlice) Service {
	t.Helper()
	got, errs := ComputeService(opts, node, local, APIServiceOf(svc), SlicesOf(sl...))
	var b strings.Builder
	b.WriteString(got.String())
	for _, e := range errs {
		fmt.Fprintf(&b, "error (%s", ReasonOf(e))
		var se *SkipError
		if errors.As(e, &se) && se.Event != "" {
			fmt.Fprintf(&b, ", event %s %s", se.Event, se.Addr)
		}
		fmt.Fprintf(&b, "): %v\n", e)
	}
	fixture.Golden(t, name, b.String())
	again, _ := ComputeService(opts, node, local, APIServiceOf(svc), SlicesOf(sl...))
	if diff := cmp.Diff(got.String(), again.String()); diff != "" {
		t.Errorf("not deterministic:\n%s", diff)
	}
	return got
}

func TestComputeServiceNilLocalPods(t *testing.T) {
	svc := service("web", []string{"10.96.0.10"}, []v1.ServicePort{port("", v1.ProtocolTCP, 80)})
	sl := slice("w", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{sport("", v1.ProtocolTCP, 80)}, ep{addr: "10.244.0.7"}, ep{addr: "10.244.0.8", node: "n"})
	got, errs := ComputeService(Options{}, Node{Name: "n"}, nil, APIServiceOf(svc), SlicesOf(sl))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	want := Service{
		VIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Entries: []SetEntry{
			{Set: "KUBE-CLUSTER-IP", Entry: "10.96.0.10,tcp:80"},
			{Set: "KUBE-IPVS-IPS", Entry: "10.96.0.10"},
			{Set: "KUBE-LOOP-BACK", Entry: "10.244.0.8,tcp:80,10.244.0.8"},
		},
	}
	if diff := cmp.Diff(want.Entries, got.Entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if len(got.VirtualServers) != 1 || len(got.VirtualServers[0].RealServers) != 2 || got.VirtualServers[0].Scheduler != DefaultScheduler {
		t.Errorf("virtual servers: %s", got)
	}
}

func TestEntriesAreCanonical(t *testing.T) {
	svc := service("ds", []string{"fd00:96::10", "10.96.0.12"}, []v1.ServicePort{port("s", v1.ProtocolUDP, 53)})
	sl := []*discoveryv1.EndpointSlice{
		slice("a", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{sport("s", v1.ProtocolUDP, 53)}, ep{addr: "10.244.0.9", node: "n"}),
		slice("b", discoveryv1.AddressTypeIPv6, []discoveryv1.EndpointPort{sport("s", v1.ProtocolUDP, 53)}, ep{addr: "fd00:244::9", node: "n"}),
	}
	opts := Options{Families: []ipset.Family{ipset.IPv4, ipset.IPv6}}
	got, _ := ComputeService(opts, Node{Name: "n"}, nil, APIServiceOf(svc), SlicesOf(sl...))
	sets := map[string]ipset.Set{}
	for _, s := range Global(opts, KernelVersion{6, 1}).Sets {
		sets[s.Name] = s
	}
	if len(got.Entries) != 6 {
		t.Fatalf("want 6 entries, got %v", got.Entries)
	}
	for _, e := range got.Entries {
		s, ok := sets[e.Set]
		if !ok {
			t.Fatalf("entry %s: set not in Global", e)
		}
		c, err := ipset.Canonical(s, e.Entry)
		if err != nil || c != e.Entry {
			t.Errorf("entry %s: canonical %q, err %v", e, c, err)
		}
	}
}
