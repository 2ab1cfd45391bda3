package reconcile

import (
	"net/netip"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// TestModelSharedVirtualServer: a virtual server several Services want is the first by
// name's while any wants it, whatever the order they came and went in, and the model keeps
// nothing of it once none does.
func TestModelSharedVirtualServer(t *testing.T) {
	k := ipvs.Key{Address: netip.MustParseAddr("10.96.0.7"), Protocol: ipvs.TCP, Port: 80}
	svc := func(port uint16) *desired.Service {
		vs := desired.VirtualServer{VirtualServer: ipvs.VirtualServer{Key: k}}
		vs.RealServers = []desired.RealServer{desired.NewRealServer(netip.AddrPortFrom(netip.MustParseAddr("10.128.0.1"), port), 1)}
		return &desired.Service{VirtualServers: []desired.VirtualServer{vs}}
	}
	name := func(n string) types.NamespacedName { return types.NamespacedName{Namespace: "default", Name: n} }
	m := newModel()
	wants := func(step, want string, port uint16) {
		t.Helper()
		vs, n, ok := m.want(k)
		if want == "" {
			if ok {
				t.Fatalf("%s: %s wants %s, want none", step, n, k)
			}
			if len(m.wantVS)+len(m.moreVS) != 0 {
				t.Fatalf("%s: the model holds %d owners, %d shared keys", step, len(m.wantVS), len(m.moreVS))
			}
			return
		}
		if !ok || n != name(want) || vs.RealServers[0].Port() != port {
			t.Fatalf("%s: want(%s) = %v %s %v, want %s's", step, k, vs, n, ok, want)
		}
	}
	var tc touched
	m.addRefs(name("c"), svc(3), &tc)
	wants("c", "c", 3)
	m.addRefs(name("a"), svc(1), &tc)
	m.addRefs(name("b"), svc(2), &tc)
	wants("c, a, b", "a", 1)
	m.subRefs(name("a"), svc(1), &tc)
	wants("a goes", "b", 2)
	m.subRefs(name("c"), svc(3), &tc)
	wants("c goes", "b", 2)
	m.addRefs(name("a"), svc(1), &tc)
	wants("a comes back", "a", 1)
	m.subRefs(name("b"), svc(2), &tc)
	wants("b goes", "a", 1)
	m.subRefs(name("a"), svc(1), &tc)
	wants("a goes again", "", 0)
	m.subRefs(name("a"), svc(1), &tc)
	wants("a goes twice", "", 0)
}
