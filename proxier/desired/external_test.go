package desired

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kubevs/kubevs/proxier/ipset"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func nodePortSvc(name, ip string, typ v1.ServiceType, ports ...v1.ServicePort) *v1.Service {
	return service(name, []string{ip}, ports, func(s *v1.Service) { s.Spec.Type = typ })
}

func npPort(name string, proto v1.Protocol, p, np int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Protocol: proto, Port: p, NodePort: np}
}

func etpLocal(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }

func ingress(ips ...string) func(*v1.Service) {
	return func(s *v1.Service) {
		for _, ip := range ips {
			in := v1.LoadBalancerIngress{IP: ip}
			if ip == "198.51.100.99" {
				in.IPMode = ptr(v1.LoadBalancerIPModeProxy)
			}
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, in)
		}
	}
}

// hinted is an endpoint with topology hints.
func hinted(addr, node string, zones []string, nodes []string) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{addr}, NodeName: ptr(node)}
	if zones != nil || nodes != nil {
		e.Hints = &discoveryv1.EndpointHints{}
		for _, z := range zones {
			e.Hints.ForZones = append(e.Hints.ForZones, discoveryv1.ForZone{Name: z})
		}
		for _, n := range nodes {
			e.Hints.ForNodes = append(e.Hints.ForNodes, discoveryv1.ForNode{Name: n})
		}
	}
	return e
}

func TestComputeNodeFacing(t *testing.T) {
	node := Node{Name: "node-a", Zone: "zone-a", Addresses: addrs("127.0.0.1", "192.168.1.10", "192.168.1.11", "::1", "fd00:1::10")}
	v4 := Options{ClusterCIDRs: prefixes("10.244.0.0/16")}
	dual := Options{Families: []ipset.Family{ipset.IPv4, ipset.IPv6}}
	webSlice := []discoveryv1.EndpointPort{sport("http", v1.ProtocolTCP, 8080)}
	web := npPort("http", v1.ProtocolTCP, 80, 30080)
	// One local (node-a) and one remote endpoint.
	twoEps := []*discoveryv1.EndpointSlice{slice("w", discoveryv1.AddressTypeIPv4, webSlice,
		ep{addr: "10.244.0.5", node: "node-a"}, ep{addr: "10.244.1.5", node: "node-b"})}
	tests := []struct {
		name string
		opts Options
		svc  *v1.Service
		sl   []*discoveryv1.EndpointSlice
	}{
		{
			// Default addresses: the node's primary IPv4 address only, never 127.0.0.1.
			name: "nodeport-tcp-udp-default-addresses",
			opts: v4,
			svc: nodePortSvc("np", "10.96.0.20", v1.ServiceTypeNodePort,
				web, npPort("dns", v1.ProtocolUDP, 53, 30053)),
			sl: []*discoveryv1.EndpointSlice{slice("np", discoveryv1.AddressTypeIPv4,
				[]discoveryv1.EndpointPort{sport("http", v1.ProtocolTCP, 8080), sport("dns", v1.ProtocolUDP, 5353)},
				ep{addr: "10.244.0.5", node: "node-a"}, ep{addr: "10.244.1.5", node: "node-b"})},
		},
		{
			name: "nodeport-sctp-local-explicit-addresses",
			opts: Options{NodePortAddresses: addrs("192.168.1.10", "192.168.1.11", "fd00:1::10")},
			svc: service("sctp", []string{"10.96.0.21"}, []v1.ServicePort{npPort("s", v1.ProtocolSCTP, 9, 30009)}, func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeNodePort
				etpLocal(s)
			}),
			sl: []*discoveryv1.EndpointSlice{slice("s", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{sport("s", v1.ProtocolSCTP, 9999)},
				ep{addr: "10.244.0.5", node: "node-a"}, ep{addr: "10.244.1.5", node: "node-b"})},
		},
		{
			// A nodePortAddresses setting that matched no node address: no NodePort.
			name: "nodeport-only-addresses-none",
			opts: Options{OnlyNodePortAddresses: true},
			svc:  nodePortSvc("np", "10.96.0.20", v1.ServiceTypeNodePort, web),
			sl:   twoEps,
		},
		{
			name: "nodeport-loopback-asked-for",
			opts: Options{NodePortAddresses: addrs("127.0.0.1")},
			svc:  nodePortSvc("np", "10.96.0.20", v1.ServiceTypeNodePort, web),
			sl:   twoEps,
		},
		{
			name: "nodeport-local-no-local-endpoint",
			opts: v4,
			svc: service("np", []string{"10.96.0.20"}, []v1.ServicePort{web}, func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeNodePort
				etpLocal(s)
			}),
			sl: []*discoveryv1.EndpointSlice{slice("w", discoveryv1.AddressTypeIPv4, webSlice, ep{addr: "10.244.1.5", node: "node-b"})},
		},
		{
			// Ranges hold the node's address: the node may connect (SOURCE-IP member); the
			// ipMode Proxy ingress gets no virtual server.
			name: "loadbalancer-source-ranges-node-allowed",
			opts: v4,
			svc: service("lb", []string{"10.96.0.30"}, []v1.ServicePort{web}, func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Spec.LoadBalancerSourceRanges = []string{"192.168.1.0/24", "203.0.113.0/24"}
			}, ingress("198.51.100.1", "198.51.100.99")),
			sl: twoEps,
		},
		{
			name: "loadbalancer-local-health-check-source-ranges-annotation",
			opts: v4,
			svc: service("lb", []string{"10.96.0.30"}, []v1.ServicePort{web}, func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Spec.HealthCheckNodePort = 32000
				s.Annotations = map[string]string{SourceRangesAnnotation: "203.0.113.0/24, 2001:db8::/32"}
				etpLocal(s)
			}, ingress("198.51.100.1")),
			sl: twoEps,
		},
		{
			name: "loadbalancer-source-range-allows-all",
			opts: v4,
			svc: service("lb", []string{"10.96.0.30"}, []v1.ServicePort{web}, func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Spec.LoadBalancerSourceRanges = []string{"0.0.0.0/0"}
			}, ingress("198.51.100.1")),
			sl: twoEps,
		},
		{
			// Only IPv6 ranges: no IPv4 client is allowed.
			name: "loadbalancer-source-ranges-other-family-only",
			opts: v4,
			svc: service("lb", []string{"10.96.0.30"}, []v1.ServicePort{web}, func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Spec.LoadBalancerSourceRanges = []string{"2001:db8::/32"}
			}, ingress("198.51.100.1")),
			sl: twoEps,
		},
		{
			// An externalIP outside the allow-list is skipped with an error; one that is the
			// node's own address gets a virtual server but is not bound.
			name: "externalips-allow-list-local",
			opts: Options{ExternalIPAllowedCIDRs: prefixes("198.51.100.0/24", "192.168.1.0/24")},
			svc: service("ext", []string{"10.96.0.40"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}, func(s *v1.Service) {
				s.Spec.ExternalIPs = []string{"198.51.100.7", "203.0.113.9", "192.168.1.10", "bogus"}
				etpLocal(s)
			}),
			sl: twoEps,
		},
		{
			name: "externalips-cluster-policy",
			opts: Options{},
			svc: service("ext", []string{"10.96.0.40"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}, func(s *v1.Service) {
				s.Spec.ExternalIPs = []string{"198.51.100.7"}
			}),
			sl: twoEps,
		},
		{
			name: "internal-traffic-policy-local",
			opts: v4,
			svc: service("itp", []string{"10.96.0.50"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}, func(s *v1.Service) {
				s.Spec.InternalTrafficPolicy = ptr(v1.ServiceInternalTrafficPolicyLocal)
			}),
			sl: twoEps,
		},
		{
			// Local and cluster sets each fall back to serving terminating endpoints.
			name: "local-and-cluster-terminating-fallback",
			opts: v4,
			svc: service("np", []string{"10.96.0.20"}, []v1.ServicePort{web}, func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeNodePort
				etpLocal(s)
			}),
			sl: []*discoveryv1.EndpointSlice{slice("w", discoveryv1.AddressTypeIPv4, webSlice,
				ep{addr: "10.244.0.5", node: "node-a", ready: no, serving: yes, termina: yes},
				ep{addr: "10.244.0.6", node: "node-a", ready: no, serving: no, termina: yes},
				ep{addr: "10.244.1.5", node: "node-b", ready: no, serving: yes, termina: yes})},
		},
		{
			name: "topology-zone-hints",
			opts: v4,
			svc:  service("topo", []string{"10.96.0.60"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}),
			sl: []*discoveryv1.EndpointSlice{hintSlice(
				hinted("10.244.1.1", "node-b", []string{"zone-a"}, nil),
				hinted("10.244.1.2", "node-c", []string{"zone-b"}, nil),
				hinted("10.244.1.3", "node-d", []string{"zone-a", "zone-b"}, nil))},
		},
		{
			name: "topology-hints-ignored-when-one-lacks-them",
			opts: v4,
			svc:  service("topo", []string{"10.96.0.60"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}),
			sl: []*discoveryv1.EndpointSlice{hintSlice(
				hinted("10.244.1.1", "node-b", []string{"zone-a"}, nil),
				hinted("10.244.1.2", "node-c", nil, nil))},
		},
		{
			name: "topology-hints-ignored-when-none-for-the-zone",
			opts: v4,
			svc:  service("topo", []string{"10.96.0.60"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}),
			sl: []*discoveryv1.EndpointSlice{hintSlice(
				hinted("10.244.1.1", "node-b", []string{"zone-b"}, nil),
				hinted("10.244.1.2", "node-c", []string{"zone-c"}, nil))},
		},
		{
			name: "topology-node-hints",
			opts: v4,
			svc:  service("topo", []string{"10.96.0.60"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}),
			sl: []*discoveryv1.EndpointSlice{hintSlice(
				hinted("10.244.0.1", "node-a", []string{"zone-a"}, []string{"node-a"}),
				hinted("10.244.1.1", "node-b", []string{"zone-a"}, []string{"node-b"}))},
		},
		{
			name: "dual-stack-loadbalancer-nodeport",
			opts: dual,
			svc: service("ds", []string{"10.96.0.70", "fd00:96::70"}, []v1.ServicePort{web}, func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Spec.LoadBalancerSourceRanges = []string{"192.168.1.0/24", "fd00:1::/64"}
			}, ingress("198.51.100.1", "2001:db8::1")),
			sl: []*discoveryv1.EndpointSlice{
				slice("ds4", discoveryv1.AddressTypeIPv4, webSlice, ep{addr: "10.244.0.5", node: "node-a"}),
				slice("ds6", discoveryv1.AddressTypeIPv6, webSlice, ep{addr: "fd00:244::5", node: "node-b"}),
			},
		},
		{
			// Type ClusterIP with leftover nodePort and ingress fields: only the ClusterIP.
			name: "clusterip-ignores-nodeport-and-status",
			opts: v4,
			svc:  service("was-lb", []string{"10.96.0.30"}, []v1.ServicePort{web}, ingress("198.51.100.1")),
			sl:   twoEps,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := computeGolden(t, "service-"+tc.name, tc.opts, node, nil, tc.svc, tc.sl)
			checkCanonical(t, tc.opts, got)
		})
	}
}

func hintSlice(eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	s := slice("topo", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{sport("http", v1.ProtocolTCP, 8080)})
	s.Endpoints = eps
	return s
}

// checkCanonical fails when a member does not fit its set as Global defines it, or is not
// in the form the kernel prints (the reconciler compares members as strings).
func checkCanonical(t *testing.T, opts Options, s Service) {
	t.Helper()
	all := opts
	all.Families = []ipset.Family{ipset.IPv4, ipset.IPv6}
	sets := map[string]ipset.Set{}
	for _, set := range Global(all, KernelVersion{6, 1}).Sets {
		sets[set.Name] = set
	}
	for _, e := range s.Entries {
		set, ok := sets[e.Set]
		if !ok {
			t.Errorf("entry %s: set not in Global", e)
			continue
		}
		if c, err := ipset.Canonical(set, e.Entry); err != nil || c != e.Entry {
			t.Errorf("entry %s: canonical %q, err %v", e, c, err)
		}
	}
}

func TestNodePortAddressesIn(t *testing.T) {
	host := addrs("127.0.0.1", "192.168.1.10", "10.0.0.5", "::1", "fd00:1::10", "192.168.1.10")
	tests := []struct {
		name  string
		cidrs []netip.Prefix
		want  []netip.Addr
	}{
		{"one range", prefixes("192.168.1.0/24"), addrs("192.168.1.10")},
		{"everything, loopback never", prefixes("0.0.0.0/0", "::/0"), addrs("10.0.0.5", "192.168.1.10", "fd00:1::10")},
		{"loopback asked for", prefixes("127.0.0.0/8", "::1/128"), addrs("127.0.0.1", "::1")},
		{"no match", prefixes("172.16.0.0/12"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NodePortAddressesIn(tc.cidrs, host)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
