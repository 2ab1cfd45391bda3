package daemon

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/metrics"
)

// TestVSOwnersSharedVirtualServer: a virtual server two Services want is owned by the first
// by name, whatever the order of the updates, and stays owned by the other when one lets it
// go (a full sync no longer rebuilds the owners: the update must not lose it).
func TestVSOwnersSharedVirtualServer(t *testing.T) {
	k := ipvs.Key{Address: netip.MustParseAddr("10.96.0.7"), Protocol: ipvs.TCP, Port: 80}
	other := ipvs.Key{Address: netip.MustParseAddr("10.96.0.8"), Protocol: ipvs.TCP, Port: 80}
	a, b := types.NamespacedName{Namespace: "default", Name: "a"}, types.NamespacedName{Namespace: "default", Name: "b"}
	with := func(keys ...ipvs.Key) desired.Service {
		var s desired.Service
		for _, k := range keys {
			s.VirtualServers = append(s.VirtualServers, desired.VirtualServer{VirtualServer: ipvs.VirtualServer{Key: k}})
		}
		return s
	}
	ref := func(n types.NamespacedName) metrics.ServiceRef {
		return metrics.ServiceRef{Namespace: n.Namespace, Name: n.Name}
	}
	steps := []struct {
		what string
		svcs map[types.NamespacedName]desired.Service
		full bool
		want map[ipvs.Key]metrics.ServiceRef
	}{
		{"b holds k", map[types.NamespacedName]desired.Service{b: with(k)}, false, map[ipvs.Key]metrics.ServiceRef{k: ref(b)}},
		{"a holds k too: a owns it", map[types.NamespacedName]desired.Service{a: with(k)}, false, map[ipvs.Key]metrics.ServiceRef{k: ref(a)}},
		{"a moves to other: b owns k again", map[types.NamespacedName]desired.Service{a: with(other)}, false, map[ipvs.Key]metrics.ServiceRef{k: ref(b), other: ref(a)}},
		{"a wants both again", map[types.NamespacedName]desired.Service{a: with(k, other)}, false, map[ipvs.Key]metrics.ServiceRef{k: ref(a), other: ref(a)}},
		{"b goes: a still owns k", map[types.NamespacedName]desired.Service{b: {}}, false, map[ipvs.Key]metrics.ServiceRef{k: ref(a), other: ref(a)}},
		{"a goes", map[types.NamespacedName]desired.Service{a: {}}, false, map[ipvs.Key]metrics.ServiceRef{}},
		{"full replace", map[types.NamespacedName]desired.Service{b: with(other)}, true, map[ipvs.Key]metrics.ServiceRef{other: ref(b)}},
	}
	o := newVSOwners()
	for _, st := range steps {
		o.update(st.svcs, st.full)
		if diff := cmp.Diff(st.want, o.snapshot()); diff != "" {
			t.Fatalf("%s: owners (-want +got):\n%s", st.what, diff)
		}
	}
}
