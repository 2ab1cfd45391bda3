package desired

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// TestComputeGuard: each guard rail refuses its addresses whatever the allow-lists say
// (0.0.0.0/0 allows every address here), skips only the refused address, and names it with
// its reason and Event. The golden files show what is still served.
func TestComputeGuard(t *testing.T) {
	node := Node{Name: "node-a", Addresses: addrs("192.168.1.10", "fd00:1::10")}
	reserved := Reserved{
		APIServers:    []netip.AddrPort{netip.MustParseAddrPort("192.168.1.2:6443"), netip.MustParseAddrPort("192.168.1.10:6443")},
		NodeAddresses: addrs("10.0.2.15", "10.244.0.1"),
		PodCIDRs:      prefixes("10.245.0.0/24"),
		ServiceCIDRs:  prefixes("10.96.0.0/16"),
		ClusterIPs:    PodSet{netip.MustParseAddr("10.97.0.10"): {}},
	}
	allowAll := prefixes("0.0.0.0/0", "::/0")
	opts := Options{
		Families:                        []ipset.Family{ipset.IPv4, ipset.IPv6},
		ClusterCIDRs:                    prefixes("10.244.0.0/16"),
		ExternalIPAllowedCIDRs:          allowAll,
		LoadBalancerIngressAllowedCIDRs: allowAll,
		Reserved:                        reserved,
	}
	with := func(f func(*Options)) Options { o := opts; f(&o); return o }
	web := npPort("http", v1.ProtocolTCP, 80, 30080)
	eps := []*discoveryv1.EndpointSlice{slice("w", discoveryv1.AddressTypeIPv4,
		[]discoveryv1.EndpointPort{sport("http", v1.ProtocolTCP, 8080)}, ep{addr: "10.244.0.5", node: "node-a"})}
	extIPs := func(ips ...string) func(*v1.Service) {
		return func(s *v1.Service) { s.Spec.ExternalIPs = ips }
	}
	tests := []struct {
		name string
		opts Options
		svc  *v1.Service
	}{
		{
			// One externalIP per rule, and one good one that stays.
			name: "externalips-every-rule",
			opts: opts,
			svc: service("ext", []string{"10.96.0.40"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}, extIPs(
				"198.51.100.7", // allowed
				"0.0.0.0", "127.0.0.1", "169.254.169.254", "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "ff02::1",
				"192.168.1.2",        // the API server (kubeconfig or default/kubernetes slice)
				"192.168.1.10",       // Node InternalIP
				"10.0.2.15",          // a host address
				"10.244.3.3",         // clusterCIDRs
				"10.245.0.9",         // Node podCIDRs
				"10.96.0.1",          // serviceCIDRs
				"10.97.0.10",         // another Service's ClusterIP, outside serviceCIDRs
				"10.96.0.40",         // its own ClusterIP
				"198.51.100.7",       // a duplicate: served once, refused never
				"::ffff:192.168.1.2", // IPv4-mapped: the same as 192.168.1.2
			)),
		},
		{
			name: "externalips-deny-all",
			opts: with(func(o *Options) { o.DenyAllExternalIPs = true }),
			svc:  service("ext", []string{"10.96.0.40"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}, extIPs("198.51.100.7", "192.168.1.2")),
		},
		{
			// Without serviceCIDRs a ClusterIP is still refused through the index.
			name: "externalip-cluster-ip-without-service-cidrs",
			opts: with(func(o *Options) {
				o.Reserved.ServiceCIDRs = nil
				o.Reserved.ClusterIPs = PodSet{netip.MustParseAddr("10.96.0.10"): {}}
			}),
			svc: service("ext", []string{"10.96.0.40"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}, extIPs("10.96.0.10", "10.96.0.11")),
		},
		{
			name: "loadbalancer-every-rule-and-allow-list",
			opts: with(func(o *Options) { o.LoadBalancerIngressAllowedCIDRs = prefixes("198.51.100.0/24", "fd00:1::/64") }),
			svc: service("lb", []string{"10.96.0.30"}, []v1.ServicePort{web}, func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeLoadBalancer },
				ingress("198.51.100.1", "203.0.113.1", "192.168.1.2", "192.168.1.10", "127.0.0.1", "10.244.0.9", "10.96.0.10", "fd00:1::10")),
		},
		{
			// The API server listens on the node's address, port 6443: a NodePort 6443
			// there is refused, one on the other node address stays; 30080 stays everywhere.
			name: "nodeport-api-server-endpoint",
			opts: with(func(o *Options) { o.NodePortAddresses = addrs("192.168.1.10", "192.168.1.11") }),
			svc: nodePortSvc("np", "10.96.0.20", v1.ServiceTypeNodePort, npPort("https", v1.ProtocolTCP, 443, 6443),
				npPort("sctp", v1.ProtocolSCTP, 9, 6443), web),
		},
		{
			// nodePortAddresses matched link-local, pod-network and Service-range addresses of
			// the host: none serves NodePorts; loopback (asked for) and 192.168.1.11 do.
			name: "nodeport-addresses-filtered",
			opts: with(func(o *Options) {
				o.NodePortAddresses = addrs("127.0.0.1", "169.254.1.1", "10.244.0.1", "10.96.0.1", "192.168.1.11", "fe80::1", "ff02::1")
			}),
			svc: nodePortSvc("np", "10.96.0.20", v1.ServiceTypeNodePort, web),
		},
		{
			// The default NodePort address (the Node's first) is skipped when it is inside
			// the pod network; the next one of the family is used.
			name: "nodeport-default-address-in-pod-cidr",
			opts: with(func(o *Options) { o.Families = nil; o.Reserved.PodCIDRs = prefixes("192.168.1.0/28") }),
			svc:  nodePortSvc("np", "10.96.0.20", v1.ServiceTypeNodePort, web),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := node
			if tc.name == "nodeport-default-address-in-pod-cidr" {
				n.Addresses = addrs("192.168.1.10", "192.168.7.10")
			}
			got := computeGolden(t, "guard-"+tc.name, tc.opts, n, nil, tc.svc, eps)
			checkCanonical(t, tc.opts, got)
		})
	}
}

func TestSpecialAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"0.0.0.0", true}, {"::", true}, {"127.0.0.53", true}, {"::1", true}, {"169.254.0.1", true},
		{"fe80::1", true}, {"224.0.0.251", true}, {"ff02::1", true}, {"255.255.255.255", true},
		{"10.0.0.1", false}, {"192.168.1.255", false}, {"2001:db8::1", false},
	} {
		if got := specialAddress(netip.MustParseAddr(tc.addr)) != ""; got != tc.want {
			t.Errorf("specialAddress(%s) special = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestRefusedNodePortAddresses(t *testing.T) {
	o := Options{ClusterCIDRs: prefixes("10.244.0.0/16"), Reserved: Reserved{ServiceCIDRs: prefixes("10.96.0.0/12")},
		NodePortAddresses: addrs("127.0.0.1", "169.254.1.1", "10.244.0.1", "10.96.0.1", "192.168.1.10", "fe80::1", "::ffff:10.244.0.2")}
	want := addrs("169.254.1.1", "10.244.0.1", "10.96.0.1", "fe80::1", "::ffff:10.244.0.2")
	if diff := cmp.Diff(want, RefusedNodePortAddresses(o), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("RefusedNodePortAddresses (-want +got):\n%s", diff)
	}
}
