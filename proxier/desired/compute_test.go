package desired

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/ipset"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/name.golden, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s", path, diff)
	}
}

func ptr[T any](v T) *T { return &v }

type svcOpt func(*v1.Service)

func service(name string, ips []string, ports []v1.ServicePort, opts ...svcOpt) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: ips[0], ClusterIPs: ips, Ports: ports},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func port(name string, proto v1.Protocol, p int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Protocol: proto, Port: p}
}

type ep struct {
	addr                    string
	node                    string
	ready, serving, termina *bool
}

func slice(name string, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name},
		AddressType: at,
		Ports:       ports,
	}
	for _, e := range eps {
		x := discoveryv1.Endpoint{
			Addresses:  []string{e.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.termina},
		}
		if e.node != "" {
			x.NodeName = ptr(e.node)
		}
		s.Endpoints = append(s.Endpoints, x)
	}
	return s
}

func sport(name string, proto v1.Protocol, p int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr(name), Protocol: ptr(proto), Port: ptr(p)}
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
			got, errs := ComputeService(tc.opts, node, local, tc.svc, tc.sl)
			var b strings.Builder
			b.WriteString(got.String())
			for _, e := range errs {
				fmt.Fprintf(&b, "error: %v\n", e)
			}
			golden(t, "service-"+tc.name, b.String())
			again, _ := ComputeService(tc.opts, node, local, tc.svc, tc.sl)
			if diff := cmp.Diff(got.String(), again.String()); diff != "" {
				t.Errorf("not deterministic:\n%s", diff)
			}
		})
	}
}

func TestComputeServiceNilLocalPods(t *testing.T) {
	svc := service("web", []string{"10.96.0.10"}, []v1.ServicePort{port("", v1.ProtocolTCP, 80)})
	sl := slice("w", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{sport("", v1.ProtocolTCP, 80)}, ep{addr: "10.244.0.7"}, ep{addr: "10.244.0.8", node: "n"})
	got, errs := ComputeService(Options{}, Node{Name: "n"}, nil, svc, []*discoveryv1.EndpointSlice{sl})
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
	got, _ := ComputeService(opts, Node{Name: "n"}, nil, svc, sl)
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
