package derive

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
)

var cmpAddr = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}, netip.AddrPort{})

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestOptions(t *testing.T) {
	node := &v1.Node{Spec: v1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24", "fd00:1::/64"}}}
	host := addrs("127.0.0.1", "192.168.1.10", "10.0.0.5", "::1", "2001:db8::10")
	tests := []struct {
		name string
		edit func(*config.Configuration)
		node *v1.Node
		want desired.Options
	}{
		{"nothing known: IPv4", nil, nil, desired.Options{Scheduler: "rr", StrictARP: true}},
		{"families from the cluster CIDRs", func(c *config.Configuration) { c.ClusterCIDRs = []string{"fd00::/48"} }, node,
			desired.Options{Scheduler: "rr", StrictARP: true, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("fd00::/48")}, Families: []ipset.Family{ipset.IPv6}}},
		{"families from the node's pod CIDRs", nil, node,
			desired.Options{Scheduler: "rr", StrictARP: true, Families: []ipset.Family{ipset.IPv4, ipset.IPv6}}},
		{"nodePortAddresses: host addresses inside, loopback only for a loopback CIDR", func(c *config.Configuration) {
			c.NodePortAddresses = []string{"0.0.0.0/0", "2001:db8::/64"}
		}, nil, desired.Options{Scheduler: "rr", StrictARP: true, OnlyNodePortAddresses: true, NodePortAddresses: addrs("10.0.0.5", "192.168.1.10", "2001:db8::10")}},
		{"nodePortAddresses: an explicit loopback CIDR", func(c *config.Configuration) {
			c.NodePortAddresses = []string{"127.0.0.0/8", "192.168.1.0/24"}
		}, nil, desired.Options{Scheduler: "rr", StrictARP: true, OnlyNodePortAddresses: true, NodePortAddresses: addrs("127.0.0.1", "192.168.1.10")}},
		{"nodePortAddresses matching no host address: no NodePort address at all", func(c *config.Configuration) {
			c.NodePortAddresses = []string{"172.16.0.0/12"}
		}, nil, desired.Options{Scheduler: "rr", StrictARP: true, OnlyNodePortAddresses: true}},
		{"externalIPAllowedCIDRs and the other settings", func(c *config.Configuration) {
			c.ExternalIPAllowedCIDRs = []string{"203.0.113.0/24"}
			c.MasqueradeAll = true
			c.Scheduler = "wlc"
			c.IPVS.StrictARP = new(bool)
		}, nil, desired.Options{Scheduler: "wlc", MasqueradeAll: true, ExternalIPAllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}},
		{"the guard rails' settings", func(c *config.Configuration) {
			c.DenyAllExternalIPs = true
			c.LoadBalancerIngressAllowedCIDRs = []string{"198.51.100.0/24"}
			c.ServiceCIDRs = []string{"10.96.0.0/12", "fd00:96::/108"}
		}, nil, desired.Options{Scheduler: "rr", StrictARP: true, DenyAllExternalIPs: true,
			LoadBalancerIngressAllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			Reserved:                        desired.Reserved{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:96::/108")}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.New()
			if tt.edit != nil {
				tt.edit(c)
			}
			got := Options(c, tt.node, host)
			// The guard rails' reserved addresses: the host's, sorted; the Node's pod CIDRs.
			tt.want.Reserved.NodeAddresses = addrs("10.0.0.5", "127.0.0.1", "192.168.1.10", "::1", "2001:db8::10")
			if tt.node != nil {
				tt.want.Reserved.PodCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("fd00:1::/64")}
			}
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("Options (-want +got):\n%s", diff)
			}
			if !Equal(got, tt.want) {
				t.Errorf("Equal(got, want) = false for equal options")
			}
			if NeedsHostAddresses(c) != (len(c.NodePortAddresses) > 0) {
				t.Errorf("NeedsHostAddresses = %v with nodePortAddresses %q", NeedsHostAddresses(c), c.NodePortAddresses)
			}
		})
	}
}

// A pod's veth brings an fe80:: address to the host: the Options must not change with it,
// or every pod start costs a rewrite of the fixed rules and a recompute of every Service.
func TestOptionsIgnoreLinkLocalHostAddresses(t *testing.T) {
	node := &v1.Node{Spec: v1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24", "fd00:1::/64"}}}
	host := addrs("127.0.0.1", "192.168.1.10", "::1", "2001:db8::10")
	withVeths := append(addrs("fe80::a8c1:abff:fe12:3456", "169.254.3.4", "fe80::1"), host...)
	c := config.New()
	before, after := Options(c, node, host), Options(c, node, withVeths)
	if diff := cmp.Diff(before, after, cmpAddr); diff != "" {
		t.Errorf("Options changed by link-local host addresses (-without +with):\n%s", diff)
	}
	if !Equal(before, after) {
		t.Errorf("Equal = false: link-local host addresses changed the Options")
	}
}

func TestEqualSeesEveryField(t *testing.T) {
	base := desired.Options{Scheduler: "rr"}
	edits := map[string]func(*desired.Options){
		"ClusterCIDRs":      func(o *desired.Options) { o.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} },
		"MasqueradeAll":     func(o *desired.Options) { o.MasqueradeAll = true },
		"Scheduler":         func(o *desired.Options) { o.Scheduler = "lc" },
		"Families":          func(o *desired.Options) { o.Families = []ipset.Family{ipset.IPv6} },
		"StrictARP":         func(o *desired.Options) { o.StrictARP = true },
		"NodePortAddresses": func(o *desired.Options) { o.NodePortAddresses = addrs("192.168.1.10") },
		"ExternalIPAllowedCIDRs": func(o *desired.Options) {
			o.ExternalIPAllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
		},
		"DenyAllExternalIPs": func(o *desired.Options) { o.DenyAllExternalIPs = true },
		"LoadBalancerIngressAllowedCIDRs": func(o *desired.Options) {
			o.LoadBalancerIngressAllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
		},
		"Reserved.APIServers": func(o *desired.Options) {
			o.Reserved.APIServers = []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:6443")}
		},
		"Reserved.NodeAddresses": func(o *desired.Options) { o.Reserved.NodeAddresses = addrs("10.0.0.1") },
		"Reserved.PodCIDRs":      func(o *desired.Options) { o.Reserved.PodCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/24")} },
		"Reserved.ServiceCIDRs": func(o *desired.Options) {
			o.Reserved.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}
		},
	}
	for name, edit := range edits {
		o := base
		edit(&o)
		if Equal(base, o) {
			t.Errorf("Equal misses a change of %s", name)
		}
	}
	if !Equal(base, base) {
		t.Error("Equal(base, base) = false")
	}
}

func TestNode(t *testing.T) {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{v1.LabelTopologyZone: "z1"}},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: "192.168.1.10"},
			{Type: v1.NodeHostName, Address: "node-a"},
			{Type: v1.NodeExternalIP, Address: "203.0.113.7"},
			{Type: v1.NodeInternalIP, Address: "::ffff:10.0.0.1"},
		}},
	}
	want := desired.Node{Name: "node-a", Labels: n.Labels, Zone: "z1", Addresses: addrs("192.168.1.10", "203.0.113.7", "10.0.0.1")}
	if diff := cmp.Diff(want, Node("node-a", n), cmpAddr); diff != "" {
		t.Errorf("Node (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(desired.Node{Name: "node-b"}, Node("node-b", nil), cmpAddr); diff != "" {
		t.Errorf("Node of no Node object (-want +got):\n%s", diff)
	}
}

func TestHostAddressesHasLoopback(t *testing.T) {
	got, err := HostAddresses()
	if err != nil {
		t.Fatal(err)
	}
	if !containsAddr(got, netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("HostAddresses() = %v, want 127.0.0.1 among them (lo)", got)
	}
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func TestKnownNode(t *testing.T) {
	withAddr := func(name, addr string) *v1.Node {
		n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"gen": name}}}
		if addr != "" {
			n.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: addr}}
		}
		return n
	}
	hostOnly := withAddr("hostname-only", "")
	hostOnly.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeHostName, Address: "node-a"}}
	last := withAddr("last", "192.168.1.10")
	tests := []struct {
		name      string
		last, cur *v1.Node
		want      *v1.Node
		kept      bool
	}{
		{"nothing known", nil, nil, nil, false},
		{"first Node", nil, withAddr("cur", "192.168.1.20"), withAddr("cur", "192.168.1.20"), false},
		{"a Node without addresses and none known", nil, withAddr("cur", ""), withAddr("cur", ""), false},
		{"the Node is deleted: the last one stays", last, nil, last, true},
		{"recreated without addresses yet: its labels, the last addresses", last, withAddr("cur", ""),
			&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cur", Labels: map[string]string{"gen": "cur"}}, Status: last.Status}, true},
		{"a hostname is no address", last, hostOnly,
			&v1.Node{ObjectMeta: hostOnly.ObjectMeta, Status: last.Status}, true},
		{"recreated with a new address: it follows", last, withAddr("cur", "192.168.1.20"), withAddr("cur", "192.168.1.20"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lastCopy *v1.Node
			if tt.last != nil {
				lastCopy = tt.last.DeepCopy()
			}
			got, kept := KnownNode(tt.last, tt.cur)
			if diff := cmp.Diff(tt.want, got); diff != "" || kept != tt.kept {
				t.Errorf("KnownNode kept = %v (want %v), node (-want +got):\n%s", kept, tt.kept, diff)
			}
			if diff := cmp.Diff(lastCopy, tt.last); diff != "" {
				t.Errorf("KnownNode modified last:\n%s", diff)
			}
		})
	}
}
