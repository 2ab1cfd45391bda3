package desired

import (
	"net/netip"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
			{Addr: netip.MustParseAddr("10.0.0.1"), Ready: true, Serving: true},
			{Addr: netip.MustParseAddr("10.0.0.2"), NodeName: "n1", Terminating: true, Hints: &Hints{Zones: []string{"z1"}, Nodes: []string{"n1"}}},
			{Addr: netip.MustParseAddr("10.0.0.4"), Ready: true, Serving: true},
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
		func(s *Slice) { s.Endpoints[0].Ready = false },
		func(s *Slice) { s.Endpoints[1].Hints = &Hints{Zones: []string{"z2"}} },
		func(s *Slice) { s.Endpoints[1].NodeName = "n2" },
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
	if unsafe.StringData(a.NodeName) != unsafe.StringData(b.NodeName) || a.Hints != b.Hints {
		t.Error("two slices hold their own copies of a node name or hints")
	}
}
