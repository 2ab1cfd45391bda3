package daemon

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/metrics"
	"github.com/kubevs/kubevs/proxier/reconcile"
	"github.com/kubevs/kubevs/proxier/runner"
)

// TestIncrementalFullSyncMatchesRebuild: after any chain of partial and full syncs over
// random changes (Services created, updated to other ClusterIPs and externalIPs, made
// headless, deleted; EndpointSlices changed and deleted), the structures a full sync keeps
// per changed Service (fullsync.go) equal a rebuild from the tracker: the ClusterIP index
// and the claims after every sync; the cache of computed Services, its generation stamp and
// the virtual server owners after every full sync. A periodic sync reads the kernel first,
// as the runner's Read does, and with a small full-read budget most reads are probes, whose
// resync takes in only the Services the full sync computed again (ResyncReadDelta): the
// fake kernel's virtual servers and real servers must then equal the computed Services'.
func TestIncrementalFullSyncMatchesRebuild(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { randomSyncs(t, seed, 40) })
	}
}

// model is what the test wrote to the API: the Services and EndpointSlices by Service.
type model struct {
	svcs   map[string]*v1.Service
	slices map[string]*discoveryv1.EndpointSlice
}

func randomSyncs(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 12))
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.SyncPeriod = metav1.Duration{Duration: time.Hour} // the test makes the full syncs
	cfg.FullReadMillicores = ptr[int32](1)                // probes between full reads
	cfg.MetricsServiceTraffic = true                      // the virtual server owners are kept
	h := startWith(t, k.kernel(), cfg)
	eventually(t, "readiness", h.d.Ready)
	m := model{svcs: map[string]*v1.Service{}, slices: map[string]*discoveryv1.EndpointSlice{}}
	names := []string{"a", "b", "c", "d", "e", "f"}
	pool := []string{"10.96.0.1", "10.96.0.2", "10.96.0.3", "10.96.0.4", "10.96.0.5"}
	for step := range steps {
		var did []string
		for range 1 + rng.IntN(3) {
			did = append(did, m.mutate(t, h, rng, names[rng.IntN(len(names))], pool))
		}
		for _, n := range names {
			m.waitSeen(t, h, n)
		}
		why := runner.Requested
		if rng.IntN(3) == 0 {
			why = runner.Periodic
		}
		if why == runner.Periodic {
			h.d.readForResync(h.ctx)
		}
		full, err := h.d.sync(h.ctx, why)
		if err != nil {
			t.Fatalf("step %d (%v): sync: %v", step, did, err)
		}
		if diff := rebuildDiff(h, full); diff != "" {
			t.Fatalf("step %d (%v), full sync %v: the incremental state differs from a rebuild (-rebuild +kept):\n%s", step, did, full, diff)
		}
		if full {
			if diff := kernelDiff(t, h, k); diff != "" {
				t.Fatalf("step %d (%v), full sync: the kernel differs from the computed Services (-computed +kernel):\n%s", step, did, diff)
			}
		}
	}
	if n := testutil.ToFloat64(h.m.ResyncReads.WithLabelValues(reconcile.ReadProbe)); n == 0 {
		t.Errorf("no periodic sync probed: the resync after a probe went untested")
	}
}

// kernelDiff compares the fake kernel's virtual servers, with their serving real servers
// (weight above 0; a drained one stays at 0 for a while), with the computed Services'.
func kernelDiff(t *testing.T, h *harness, k *fakeKernel) string {
	t.Helper()
	h.d.kmu.Lock()
	want := map[ipvs.Key][]string{}
	// A virtual server two Services want (the fake API server lets ClusterIPs collide) is
	// the first's by name, as the reconciler programs it.
	names := slices.SortedFunc(maps.Keys(h.d.computed.svcs), func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	for _, n := range names {
		for _, vs := range h.d.computed.svcs[n].VirtualServers {
			if _, taken := want[vs.Key]; taken {
				continue
			}
			var rss []string
			for _, rs := range vs.RealServers {
				if rs.Weight() > 0 {
					rss = append(rss, rs.Addr().String())
				}
			}
			slices.Sort(rss)
			want[vs.Key] = rss
		}
	}
	h.d.kmu.Unlock()
	vss, err := k.ipvs.VirtualServers()
	if err != nil {
		t.Fatal(err)
	}
	got := map[ipvs.Key][]string{}
	for _, vs := range vss {
		rs, err := k.ipvs.RealServers(vs.Key)
		if err != nil {
			t.Fatal(err)
		}
		var rss []string
		for _, r := range rs {
			if r.Weight > 0 {
				rss = append(rss, r.Address.String())
			}
		}
		slices.Sort(rss)
		got[vs.Key] = rss
	}
	return cmp.Diff(want, got, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b ipvs.Key) bool { return a == b }))
}

// mutate makes one random change to the Service name or its slice and returns its name.
func (m *model) mutate(t *testing.T, h *harness, rng *rand.Rand, name string, pool []string) string {
	t.Helper()
	ctx := context.Background()
	svcs, eps := h.client.CoreV1().Services("default"), h.client.DiscoveryV1().EndpointSlices("default")
	var err error
	what := ""
	switch rng.IntN(5) {
	case 0, 1: // create or update the Service
		ip := pool[rng.IntN(len(pool))]
		if rng.IntN(8) == 0 {
			ip = v1.ClusterIPNone
		}
		svc := service(name, ip, 80)
		if rng.IntN(3) == 0 {
			svc.Spec.ExternalIPs = []string{pool[rng.IntN(len(pool))]}
		}
		what = fmt.Sprintf("put service %s %s %v", name, ip, svc.Spec.ExternalIPs)
		if m.svcs[name] == nil {
			_, err = svcs.Create(ctx, svc, metav1.CreateOptions{})
		} else {
			_, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
		}
		m.svcs[name] = svc
	case 2: // delete the Service
		what = "delete service " + name
		if m.svcs[name] != nil {
			err = svcs.Delete(ctx, name, metav1.DeleteOptions{})
			delete(m.svcs, name)
		}
	case 3: // create or update the slice
		var ips []string
		for range rng.IntN(3) {
			ips = append(ips, fmt.Sprintf("10.244.2.%d", 1+rng.IntN(9)))
		}
		slices.Sort(ips)
		ips = slices.Compact(ips)
		sl := slice(name, "node-b", ips...)
		what = fmt.Sprintf("put slice %s %v", name, ips)
		if m.slices[name] == nil {
			_, err = eps.Create(ctx, sl, metav1.CreateOptions{})
		} else {
			_, err = eps.Update(ctx, sl, metav1.UpdateOptions{})
		}
		m.slices[name] = sl
	case 4: // delete the slice
		what = "delete slice " + name
		if m.slices[name] != nil {
			err = eps.Delete(ctx, sl(name), metav1.DeleteOptions{})
			delete(m.slices, name)
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return what
}

func sl(svc string) string { return svc + "-1" }

// waitSeen waits until the tracker holds the Service name and its slice as the model does.
func (m *model) waitSeen(t *testing.T, h *harness, name string) {
	t.Helper()
	want, wantSlice := m.svcs[name], m.slices[name]
	eventually(t, "the tracker to see "+name, func() bool {
		svc, eps := h.d.tracker.Service(types.NamespacedName{Namespace: "default", Name: name})
		if (svc == nil) != (want == nil) || len(eps) != btoi(wantSlice != nil) {
			return false
		}
		if svc != nil && (svc.Spec.ClusterIP != want.Spec.ClusterIP || !slices.Equal(svc.Spec.ExternalIPs, want.Spec.ExternalIPs)) {
			return false
		}
		return wantSlice == nil || eps[0].Equal(desired.SliceOf(wantSlice))
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rebuildDiff compares, under kmu, what the daemon kept with a rebuild from the tracker.
func rebuildDiff(h *harness, full bool) string {
	d := h.d
	d.kmu.Lock()
	defer d.kmu.Unlock()
	var idx derive.ClusterIPIndex
	claims := map[types.NamespacedName]struct{}{}
	names := d.tracker.Services()
	for _, n := range names {
		svc, _ := d.tracker.Service(n)
		idx.Set(n, svc)
		if claimsAddresses(svc) {
			claims[n] = struct{}{}
		}
	}
	addrs := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	diff := cmp.Diff(idx, d.clusterIPs, cmp.AllowUnexported(derive.ClusterIPIndex{}), cmpopts.IgnoreFields(derive.ClusterIPIndex{}, "gen"), cmpopts.EquateEmpty(), addrs)
	diff += cmp.Diff(claims, d.claims, cmpopts.EquateEmpty())
	if !full {
		return diff // a partial sync leaves claims recomputed by the next full sync
	}
	d.mu.Lock()
	local := maps.Clone(d.localIPs)
	d.mu.Unlock()
	want, owners := map[types.NamespacedName]string{}, map[ipvs.Key]metrics.ServiceRef{}
	for _, n := range names {
		svc, eps := d.tracker.Service(n)
		s, _ := desired.ComputeService(d.desiredOpts, d.computed.node, local, svc, eps)
		if keepComputed(s) {
			want[n] = fmt.Sprintf("%s\nhealth %d local %d", s, s.HealthCheckNodePort, s.LocalEndpoints)
		}
		for _, vs := range s.VirtualServers {
			if _, taken := owners[vs.Key]; !taken { // names are sorted: the first holder owns
				owners[vs.Key] = metrics.ServiceRef{Namespace: n.Namespace, Name: n.Name}
			}
		}
	}
	got := map[types.NamespacedName]string{}
	for n, s := range d.computed.svcs {
		got[n] = fmt.Sprintf("%s\nhealth %d local %d", s, s.HealthCheckNodePort, s.LocalEndpoints)
	}
	diff += cmp.Diff(want, got, cmpopts.EquateEmpty())
	diff += cmp.Diff(owners, d.owners.snapshot(), cmpopts.EquateEmpty(), addrs)
	if d.computed.ipGen != d.clusterIPs.Generation() {
		diff += fmt.Sprintf("cache stamped with ClusterIP generation %d, index at %d\n", d.computed.ipGen, d.clusterIPs.Generation())
	}
	return diff
}
