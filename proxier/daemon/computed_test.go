package daemon

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/runner"
)

// TestFullResyncRecomputesOnlyChangedServices: a periodic resync reuses the desired state
// of unchanged Services (it still re-reads and repairs the kernel); a changed Service is
// recomputed, and a Node change recomputes every Service.
func TestFullResyncRecomputesOnlyChangedServices(t *testing.T) {
	k := newFakeKernel()
	h := start(t, k, service("a", "10.96.0.10", 80), slice("a", "node-b", "10.244.2.5"),
		service("b", "10.96.0.11", 80), slice("b", "node-b", "10.244.2.6"),
		service("c", "10.96.0.12", 80), slice("c", "node-b", "10.244.2.7"))
	eventually(t, "readiness", h.d.Ready)
	ctx := h.ctx
	// periodic runs a periodic resync as the runner would and returns the Services it
	// computed.
	periodic := func() int {
		t.Helper()
		h.d.kmu.Lock()
		before := h.d.computes
		h.d.kmu.Unlock()
		if _, err := h.d.sync(ctx, runner.Periodic); err != nil {
			t.Fatalf("periodic sync: %v", err)
		}
		h.d.kmu.Lock()
		defer h.d.kmu.Unlock()
		return h.d.computes - before
	}
	if n := periodic(); n != 0 {
		t.Errorf("a periodic resync with nothing changed computed %d Services, want 0", n)
	}

	// The kernel drifted: the resync still repairs it from the cached state.
	key := ipvs.Key{Address: netip.MustParseAddr("10.96.0.11"), Protocol: ipvs.TCP, Port: 80}
	rs := netip.AddrPortFrom(netip.MustParseAddr("10.244.2.6"), 8080)
	if err := k.ipvs.DeleteRealServer(key, ipvs.RealServer{Address: rs.Addr(), Port: rs.Port()}); err != nil {
		t.Fatal(err)
	}
	if n := periodic(); n != 0 {
		t.Errorf("periodic resync computed %d Services, want 0", n)
	}
	if !hasRealServer(k, key, rs) {
		t.Errorf("the periodic resync did not restore the deleted real server:\n%s", k.ipvs.Dump())
	}

	// A changed Service whose change a full sync takes is recomputed, alone.
	if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(), slice("c", "node-b", "10.244.2.8"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the slice update", func() bool {
		_, sl := h.d.tracker.Service(types.NamespacedName{Namespace: "default", Name: "c"})
		return len(sl) == 1 && sl[0].Endpoints[0].Addr() == netip.MustParseAddr("10.244.2.8")
	})
	if n := periodic(); n > 1 {
		t.Errorf("periodic resync after one change computed %d Services, want at most 1", n)
	}
	if !strings.Contains(k.ipvs.Dump(), "10.244.2.8") {
		t.Errorf("the changed endpoint is not in the kernel:\n%s", k.ipvs.Dump())
	}

	// A Node change (its labels feed Compute) invalidates every cached Service.
	n, err := h.client.CoreV1().Nodes().Get(context.Background(), "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels = map[string]string{v1.LabelTopologyZone: "zone-1"}
	h.d.kmu.Lock()
	before := h.d.computes
	h.d.kmu.Unlock()
	if _, err := h.client.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every Service recomputed for the new Node", func() bool {
		h.d.kmu.Lock()
		defer h.d.kmu.Unlock()
		return h.d.computes-before >= 3
	})
}

// TestChangeAfterFailedPartialSyncDoesNotWaitForRetry: a partial sync fails; a change made
// then is applied by a partial sync at once, before the retry (a full resync, at least 1s
// later), which then converges the failed change too.
func TestChangeAfterFailedPartialSyncDoesNotWaitForRetry(t *testing.T) {
	k := newFakeKernel()
	// The retry is due in 10 minutes, so a change applied within the test's wait was applied by
	// a partial sync, however slow the machine (a 1 s retry raced the new Service in a loaded VM).
	h := startWithOptions(t, Options{Kernel: k.kernel(), Config: testConfig(t), retryBase: 10 * time.Minute},
		service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"))
	eventually(t, "readiness", h.d.Ready)
	full := func() float64 { return gather(t, h.m)[`kubevs_sync_duration_seconds{mode="full"}`] }
	if n := full(); n != 1 {
		t.Fatalf("full syncs = %v after start, want 1", n)
	}
	k.ipvs.FailNext(ipvstest.OpAddRealServer, errors.New("injected failure"))
	ctx := context.Background()
	if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(ctx, slice("web", "node-b", "10.244.2.5", "10.244.2.6"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failed partial sync", func() bool { return gather(t, h.m)[`kubevs_sync_failures_total{mode="partial"}`] == 1 })
	h.create(service("api", "10.96.0.11", 80))
	h.create(slice("api", "node-b", "10.244.2.9"))
	api := ipvs.Key{Address: netip.MustParseAddr("10.96.0.11"), Protocol: ipvs.TCP, Port: 80}
	eventually(t, "the new Service", func() bool {
		return hasRealServer(k, api, netip.MustParseAddrPort("10.244.2.9:8080"))
	})
	if n := full(); n != 1 {
		t.Errorf("the new Service was applied after %v full syncs, want by a partial sync before the retry", n)
	}
	// The retry (a full resync; its timing is the runner's, tested on a fake clock there)
	// converges the failed change.
	web := ipvs.Key{Address: netip.MustParseAddr("10.96.0.10"), Protocol: ipvs.TCP, Port: 80}
	if hasRealServer(k, web, netip.MustParseAddrPort("10.244.2.6:8080")) {
		t.Fatal("the failed change is in the kernel before the retry")
	}
	if _, err := h.d.sync(h.ctx, runner.Retry); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !hasRealServer(k, web, netip.MustParseAddrPort("10.244.2.6:8080")) {
		t.Errorf("the retry did not converge the failed change:\n%s", k.ipvs.Dump())
	}
}

// TestFullResyncRechecksClaimsWhenClusterIPsMove: the cache of computed Services must not
// hide a guard-rail refusal. Service a claims 10.96.0.77 as an externalIP; later Service b
// is given that address as its ClusterIP. a itself did not change, so no partial sync
// recomputes it, but the next periodic resync must: its externalIP is now another
// Service's ClusterIP and is withdrawn.
func TestFullResyncRechecksClaimsWhenClusterIPsMove(t *testing.T) {
	k := newFakeKernel()
	a := service("a", "10.96.0.10", 80)
	a.Spec.ExternalIPs = []string{"10.96.0.77"}
	h := start(t, k, a, slice("a", "node-b", "10.244.2.5"))
	eventually(t, "readiness", h.d.Ready)
	claimed := ipvs.Key{Address: netip.MustParseAddr("10.96.0.77"), Protocol: ipvs.TCP, Port: 80}
	rs := netip.AddrPortFrom(netip.MustParseAddr("10.244.2.5"), 8080)
	eventually(t, "a's externalIP programmed", func() bool { return hasRealServer(k, claimed, rs) })
	if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil { // fills the cache
		t.Fatalf("periodic sync: %v", err)
	}

	if _, err := h.client.CoreV1().Services("default").Create(context.Background(), service("b", "10.96.0.77", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b seen", func() bool {
		svc, _ := h.d.tracker.Service(types.NamespacedName{Namespace: "default", Name: "b"})
		return svc != nil
	})
	if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil {
		t.Fatalf("periodic sync: %v", err)
	}
	if hasRealServer(k, claimed, rs) {
		t.Errorf("a still serves 10.96.0.77, now b's ClusterIP, after a periodic resync:\n%s", k.ipvs.Dump())
	}
}

// TestFullResyncRechecksClaimsWhenClusterIPsSwap: as above, but another Service's ClusterIP
// goes at the same time, so the ClusterIPs are as many as when the cache was stamped. An
// index rebuilt from scratch by each full sync counted its generation from zero again and
// landed on the stamp: a kept serving b's ClusterIP. The index now moves on per change.
func TestFullResyncRechecksClaimsWhenClusterIPsSwap(t *testing.T) {
	k := newFakeKernel()
	a := service("a", "10.96.0.10", 80)
	a.Spec.ExternalIPs = []string{"10.96.0.77"}
	h := start(t, k, a, slice("a", "node-b", "10.244.2.5"), service("c", "10.96.0.20", 80))
	eventually(t, "readiness", h.d.Ready)
	claimed := ipvs.Key{Address: netip.MustParseAddr("10.96.0.77"), Protocol: ipvs.TCP, Port: 80}
	rs := netip.AddrPortFrom(netip.MustParseAddr("10.244.2.5"), 8080)
	eventually(t, "a's externalIP programmed", func() bool { return hasRealServer(k, claimed, rs) })
	if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil { // fills the cache
		t.Fatalf("periodic sync: %v", err)
	}

	ctx := context.Background()
	if err := h.client.CoreV1().Services("default").Delete(ctx, "c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.CoreV1().Services("default").Create(ctx, service("b", "10.96.0.77", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b seen and c gone", func() bool {
		b, _ := h.d.tracker.Service(types.NamespacedName{Namespace: "default", Name: "b"})
		c, _ := h.d.tracker.Service(types.NamespacedName{Namespace: "default", Name: "c"})
		return b != nil && c == nil
	})
	if _, err := h.d.sync(h.ctx, runner.Requested); err != nil { // b and c, in a partial sync
		t.Fatalf("partial sync: %v", err)
	}
	if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil {
		t.Fatalf("periodic sync: %v", err)
	}
	if hasRealServer(k, claimed, rs) {
		t.Errorf("a still serves 10.96.0.77, now b's ClusterIP, after a periodic resync:\n%s", k.ipvs.Dump())
	}
}
