package daemon

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/metrics"
	"github.com/kubevs/kubevs/proxier/tracker"
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

// TestVSOwnersMatchesStates: after any sequence of updates, a virtual server is owned by
// the first by name of the Services whose last state wants it, with up to four holders a
// key (the first and the others are kept apart), a Service wanting a key twice, and full
// replaces among the updates.
func TestVSOwnersMatchesStates(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var keys []ipvs.Key
	for i := range 4 {
		keys = append(keys, ipvs.Key{Address: netip.AddrFrom4([4]byte{10, 96, 0, byte(i)}), Protocol: ipvs.TCP, Port: 80})
	}
	// "a-b/x" comes before "a/x" (the order of the names' strings, tracker.CompareNames),
	// though namespace "a" comes before "a-b".
	names := []types.NamespacedName{{Namespace: "a", Name: "x"}, {Namespace: "a-b", Name: "x"}, {Namespace: "a", Name: "y"}, {Namespace: "b", Name: "a"}}
	states := map[types.NamespacedName]desired.Service{}
	o := newVSOwners()
	for step := range 2000 {
		update, full := map[types.NamespacedName]desired.Service{}, rng.IntN(50) == 0
		if full {
			clear(states)
		}
		for _, n := range names {
			if !full && rng.IntN(2) == 0 {
				continue
			}
			var s desired.Service
			for _, k := range keys {
				for range rng.IntN(3) / 2 * (1 + rng.IntN(2)) { // none mostly, at times twice
					s.VirtualServers = append(s.VirtualServers, desired.VirtualServer{VirtualServer: ipvs.VirtualServer{Key: k}})
				}
			}
			update[n], states[n] = s, s
		}
		o.update(update, full)
		want := map[ipvs.Key]metrics.ServiceRef{}
		for _, n := range slices.SortedFunc(maps.Keys(states), tracker.CompareNames) {
			for _, vs := range states[n].VirtualServers {
				if _, ok := want[vs.Key]; !ok {
					want[vs.Key] = metrics.ServiceRef{Namespace: n.Namespace, Name: n.Name}
				}
			}
		}
		if diff := cmp.Diff(want, o.snapshot()); diff != "" {
			t.Fatalf("step %d: owners (-want +got):\n%s", step, diff)
		}
	}
	o.update(map[types.NamespacedName]desired.Service{}, true)
	if len(o.vss)+len(o.first)+len(o.rest) != 0 {
		t.Fatalf("after a full replace with nothing: %d Services, %d keys, %d shared keys held", len(o.vss), len(o.first), len(o.rest))
	}
}

// TestOwnersKeptOnlyForTrafficMetrics: the owners serve the per-Service traffic metrics
// alone; with them off (the default) the daemon keeps none, and its syncs still run.
func TestOwnersKeptOnlyForTrafficMetrics(t *testing.T) {
	for _, on := range []bool{false, true} {
		k := newFakeKernel()
		cfg := testConfig(t)
		cfg.MetricsServiceTraffic = on
		h := startWith(t, k.kernel(), cfg, service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"))
		eventually(t, "the virtual server", func() bool { return strings.Contains(k.ipvs.Dump(), "10.244.2.5:8080") })
		if (h.d.owners != nil) != on {
			t.Errorf("metricsServiceTraffic %t: owners kept %t", on, h.d.owners != nil)
		}
		if on && len(h.d.owners.snapshot()) != 1 {
			t.Errorf("owners %v, want the one virtual server", h.d.owners.snapshot())
		}
		h.stop()
	}
}
