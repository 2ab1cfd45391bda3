package desired

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// TestSliceOf: the compact slice keeps what Compute and the guard rails read, with the
// API's meaning of absent fields: conditions ready and serving and not terminating, a port
// TCP; an endpoint without address is dropped, one whose first address does not parse is
// listed as invalid, addresses after the first are kept apart.
func TestSliceOf(t *testing.T) {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "web-abc", Labels: map[string]string{discoveryv1.LabelServiceName: "web", "other": "x"},
			Annotations: map[string]string{"a": "b"}, ResourceVersion: "7",
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr("http"), Protocol: ptr(v1.ProtocolUDP), Port: ptr(int32(8080))},
			{}, // no name, protocol or number
		},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.1"}},
			{Addresses: []string{"::ffff:10.0.0.2", "10.0.0.9", "bad"}, NodeName: ptr("n1"),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(false), Terminating: ptr(true)},
				Hints:      &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "z1"}}, ForNodes: []discoveryv1.ForNode{{Name: "n1"}}}},
			{},                                  // no address
			{Addresses: []string{"10.0.0.300"}}, // invalid
			{Addresses: []string{"10.0.0.4"}, Hints: &discoveryv1.EndpointHints{}}, // empty hints: none
		},
	}
	want := &Slice{
		Namespace: "ns", Name: "web-abc", Service: "web", AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []SlicePort{{Name: "http", Protocol: v1.ProtocolUDP, Port: 8080, HasPort: true}, {Protocol: v1.ProtocolTCP}},
		Endpoints: []Endpoint{
			NewEndpoint(netip.MustParseAddr("10.0.0.1"), "", nil, true, true, false),
			NewEndpoint(netip.MustParseAddr("10.0.0.2"), "n1", &Hints{Zones: []string{"z1"}, Nodes: []string{"n1"}}, false, false, true),
			NewEndpoint(netip.MustParseAddr("10.0.0.4"), "", nil, true, true, false),
		},
		Invalid: []string{"10.0.0.300"},
		Others:  []netip.Addr{netip.MustParseAddr("10.0.0.9")},
	}
	got := SliceOf(es)
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("SliceOf (-want +got):\n%s", d)
	}
	if !got.Equal(want) || !want.Equal(got) {
		t.Error("Equal is false for equal slices")
	}
	for _, change := range []func(s *Slice){
		func(s *Slice) { s.Endpoints[0] = NewEndpoint(s.Endpoints[0].Addr(), "", nil, false, true, false) },
		func(s *Slice) {
			s.Endpoints[0] = NewEndpoint(netip.MustParseAddr("10.0.0.3"), "", nil, true, true, false)
		},
		func(s *Slice) {
			s.Endpoints[1] = NewEndpoint(s.Endpoints[1].Addr(), "n1", &Hints{Zones: []string{"z2"}}, false, false, true)
		},
		func(s *Slice) {
			s.Endpoints[1] = NewEndpoint(s.Endpoints[1].Addr(), "n2", s.Endpoints[1].Hints(), false, false, true)
		},
		func(s *Slice) { s.Ports[0].Port = 80 },
		func(s *Slice) { s.Invalid = nil },
		func(s *Slice) { s.Others = nil },
		func(s *Slice) { s.AddressType = discoveryv1.AddressTypeIPv6 },
		func(s *Slice) { s.Service = "db" },
	} {
		c := SliceOf(es)
		change(c)
		if c.Equal(got) {
			t.Errorf("Equal is true for %+v and %+v", c, got)
		}
	}
	if SliceOf(es).Equal(nil) || !(*Slice)(nil).Equal(nil) {
		t.Error("Equal with nil")
	}
}

// TestSliceOfShares: endpoints on one node, or with one set of hints, in slices converted
// apart share one copy of the name and of the hints.
func TestSliceOfShares(t *testing.T) {
	mk := func() *Slice {
		return SliceOf(&discoveryv1.EndpointSlice{Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"10.0.0.1"}, NodeName: ptr("node-" + "a"),
			Hints: &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "z1"}}},
		}}})
	}
	a, b := mk().Endpoints[0], mk().Endpoints[0]
	if unsafe.StringData(a.NodeName()) != unsafe.StringData(b.NodeName()) || a.Hints() != b.Hints() || a.where != b.where {
		t.Error("two slices hold their own copies of a node name, hints or placement")
	}
	if unsafe.Sizeof(a) != 24 {
		t.Errorf("an Endpoint takes %d bytes, want 24", unsafe.Sizeof(a))
	}
	// Other conditions or family on the same node: another placement, the same name.
	c := SliceOf(&discoveryv1.EndpointSlice{Endpoints: []discoveryv1.Endpoint{
		{Addresses: []string{"10.0.0.2"}, NodeName: ptr("node-a"), Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Terminating: ptr(true)}},
		{Addresses: []string{"fd00::2"}, NodeName: ptr("node-a")},
	}}).Endpoints
	if c[0].where == c[1].where || unsafe.StringData(c[0].NodeName()) != unsafe.StringData(c[1].NodeName()) {
		t.Error("endpoints that differ in conditions or family share a placement, or not their node name")
	}
	if c[0].Ready() || !c[0].Serving() || !c[0].Terminating() || c[0].Addr() != netip.MustParseAddr("10.0.0.2") ||
		!c[1].Ready() || c[1].Terminating() || c[1].Addr() != netip.MustParseAddr("fd00::2") {
		t.Errorf("conditions or addresses lost: %v", c)
	}
	// Without node or hints: the shared placement of their flags, taken without the lock.
	e := SliceOf(&discoveryv1.EndpointSlice{Endpoints: []discoveryv1.Endpoint{
		{Addresses: []string{"10.0.0.3"}}, {Addresses: []string{"10.0.0.4"}}, {Addresses: []string{"fd00::4"}, Conditions: discoveryv1.EndpointConditions{Serving: ptr(false)}},
	}}).Endpoints
	if e[0].where != e[1].where || e[0].where == e[2].where || !e[0].Ready() || !e[1].Serving() || e[2].Serving() || e[2].Addr() != netip.MustParseAddr("fd00::4") {
		t.Errorf("endpoints without a node: %v", e)
	}
	if (Endpoint{}).Ready() || (Endpoint{}).NodeName() != "" || (Endpoint{}).Hints() != nil {
		t.Error("the zero Endpoint is not empty")
	}
	// Well-known values are the package's constants, not the decoder's copies.
	d := SliceOf(&discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressType(strings.Clone("IPv6")),
		Ports: []discoveryv1.EndpointPort{{Protocol: ptr(v1.Protocol(strings.Clone("SCTP")))}}})
	if unsafe.StringData(string(d.AddressType)) != unsafe.StringData(string(discoveryv1.AddressTypeIPv6)) ||
		unsafe.StringData(string(d.Ports[0].Protocol)) != unsafe.StringData(string(v1.ProtocolSCTP)) {
		t.Error("the address type or a port's protocol is the decoder's copy")
	}
}

// TestSliceOfRefusesZones: an address with a zone cannot be a real server (the kernel
// takes 16 bytes): it is reported invalid, not used without its zone.
func TestSliceOfRefusesZones(t *testing.T) {
	s := SliceOf(&discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv6, Endpoints: []discoveryv1.Endpoint{
		{Addresses: []string{"fe80::1%eth0"}}, {Addresses: []string{"fd00::1"}},
	}})
	if len(s.Endpoints) != 1 || s.Endpoints[0].Addr() != netip.MustParseAddr("fd00::1") || !slices.Equal(s.Invalid, []string{"fe80::1%eth0"}) {
		t.Errorf("endpoints %v, invalid %q", s.Endpoints, s.Invalid)
	}
}

// TestZonedEndpointIsReported: Compute reports the zoned address it skips, with why.
func TestZonedEndpointIsReported(t *testing.T) {
	svc := APIServiceOf(service("web", []string{"fd00:96::1"}, []v1.ServicePort{port("http", v1.ProtocolTCP, 80)}))
	sl := SliceOf(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, AddressType: discoveryv1.AddressTypeIPv6,
		Ports: []discoveryv1.EndpointPort{sport("http", v1.ProtocolTCP, 8080)}, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"fe80::1%eth0"}}}})
	_, errs := ComputeService(Options{Families: []ipset.Family{ipset.IPv6}}, Node{Name: "n"}, nil, svc, []*Slice{sl})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "takes no zone") {
		t.Errorf("errors %v, want the zoned address reported", errs)
	}
}
