package derive

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kubevs/kubevs/proxier/desired"
)

func apiSlice(ns, svc string, port int32, ips ...string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: ips}},
		Ports:      []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(port), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
}

func TestAPIServers(t *testing.T) {
	eps := []*discoveryv1.EndpointSlice{
		apiSlice("default", "kubernetes", 6443, "192.168.1.2", "192.168.1.3"),
		apiSlice("default", "web", 8080, "10.244.0.5"),       // another Service
		apiSlice("kube-system", "kubernetes", 1, "10.0.0.9"), // not default/kubernetes
		nil,
	}
	tests := []struct {
		host string
		want []string
	}{
		{"https://192.168.1.2:6443", []string{"192.168.1.2:6443", "192.168.1.3:6443"}},
		{"https://10.96.0.1", []string{"10.96.0.1:443", "192.168.1.2:6443", "192.168.1.3:6443"}},
		{"http://10.0.0.1", []string{"10.0.0.1:80", "192.168.1.2:6443", "192.168.1.3:6443"}},
		{"192.168.1.9:8443", []string{"192.168.1.2:6443", "192.168.1.3:6443", "192.168.1.9:8443"}},
		{"https://[fd00::1]:6443", []string{"192.168.1.2:6443", "192.168.1.3:6443", "[fd00::1]:6443"}},
		{"https://api.example.com:6443", []string{"192.168.1.2:6443", "192.168.1.3:6443"}},
		{"", []string{"192.168.1.2:6443", "192.168.1.3:6443"}},
	}
	for _, tc := range tests {
		var want []netip.AddrPort
		for _, s := range tc.want {
			want = append(want, netip.MustParseAddrPort(s))
		}
		if diff := cmp.Diff(want, APIServers(tc.host, desired.SlicesOf(eps...)), cmpAddr); diff != "" {
			t.Errorf("APIServers(%q) (-want +got):\n%s", tc.host, diff)
		}
	}
}

func TestClusterIPIndex(t *testing.T) {
	svc := func(ips ...string) *desired.APIService {
		s := &desired.APIService{Spec: desired.APIServiceSpec{ClusterIPs: ips}}
		if len(ips) > 0 {
			s.Spec.ClusterIP = ips[0]
		}
		return s
	}
	a, b := types.NamespacedName{Namespace: "ns", Name: "a"}, types.NamespacedName{Namespace: "ns", Name: "b"}
	var x ClusterIPIndex
	has := func(ip string) bool { return x.Has(netip.MustParseAddr(ip)) }
	if has("10.96.0.10") {
		t.Fatal("the zero index holds an address")
	}
	x.Set(a, svc("10.96.0.10", "fd00:96::10"))
	x.Set(b, svc("10.96.0.10")) // the same address twice (a stale object)
	if !has("10.96.0.10") || !has("fd00:96::10") || !has("::ffff:10.96.0.10") || x.Len() != 2 {
		t.Fatalf("after two Services: 10.96.0.10 %v, fd00:96::10 %v, len %d", has("10.96.0.10"), has("fd00:96::10"), x.Len())
	}
	x.Set(a, nil)
	if !has("10.96.0.10") || has("fd00:96::10") {
		t.Errorf("after a's deletion: 10.96.0.10 %v (b holds it), fd00:96::10 %v", has("10.96.0.10"), has("fd00:96::10"))
	}
	x.Set(b, svc("None"))
	x.Set(b, &desired.APIService{})
	if x.Len() != 0 {
		t.Errorf("headless and empty Services left %d addresses", x.Len())
	}
}

// TestClusterIPIndexResetMovesTheGeneration: an index emptied and filled again to as many
// addresses as before must not look unchanged to a cache stamped with its old generation.
func TestClusterIPIndexResetMovesTheGeneration(t *testing.T) {
	a := types.NamespacedName{Namespace: "ns", Name: "a"}
	svc := &desired.APIService{Spec: desired.APIServiceSpec{ClusterIP: "10.96.0.10"}}
	var x ClusterIPIndex
	x.Set(a, svc)
	before := x.Generation()
	x.Reset()
	if x.Len() != 0 || x.Has(netip.MustParseAddr("10.96.0.10")) {
		t.Fatalf("after Reset: %d addresses", x.Len())
	}
	x.Set(a, svc)
	if x.Generation() == before {
		t.Errorf("generation %d after Reset and the same Set, want a new one", x.Generation())
	}
}

// TestClusterIPIndexReplaces: setting a name again lets go of exactly the addresses its
// previous Service held (parsed again from it), duplicates and garbage included, and only
// a Service holding an address is kept.
func TestClusterIPIndexReplaces(t *testing.T) {
	svc := func(ips ...string) *desired.APIService {
		return &desired.APIService{Spec: desired.APIServiceSpec{ClusterIPs: ips}}
	}
	a, b := types.NamespacedName{Namespace: "ns", Name: "a"}, types.NamespacedName{Namespace: "ns", Name: "b"}
	var x ClusterIPIndex
	has := func(ip string) bool { return x.Has(netip.MustParseAddr(ip)) }
	x.Set(a, svc("10.96.0.10", "::ffff:10.96.0.10", "garbage", "fd00:96::10"))
	x.Set(b, svc("fd00:96::10"))
	gen := x.Generation()
	x.Set(a, svc("10.96.0.11"))
	if has("10.96.0.10") || !has("10.96.0.11") || !has("fd00:96::10") || x.Len() != 2 || x.Generation() == gen {
		t.Fatalf("after a moved: 10.96.0.10 %v, 10.96.0.11 %v, fd00:96::10 %v (b's), len %d, generation moved %v",
			has("10.96.0.10"), has("10.96.0.11"), has("fd00:96::10"), x.Len(), x.Generation() != gen)
	}
	x.Set(a, svc("10.96.0.11"))
	if !has("10.96.0.11") || x.Len() != 2 {
		t.Errorf("the same address set again: 10.96.0.11 %v, len %d", has("10.96.0.11"), x.Len())
	}
	x.Set(b, svc("None"))
	x.Set(a, nil)
	if x.Len() != 0 || len(x.byName) != 0 {
		t.Errorf("after both went: %d addresses, %d Services kept", x.Len(), len(x.byName))
	}
}
