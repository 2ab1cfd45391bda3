package reconcile

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// many returns n ClusterIP Services of two endpoints each, apart from web's and dns's
// addresses.
func many(n int) []svc {
	out := make([]svc, n)
	for i := range out {
		out[i] = svc{
			name:  fmt.Sprintf("bench/svc-%d", i),
			ip:    fmt.Sprintf("10.100.%d.%d", i/250, i%250+1),
			ports: []string{"TCP:80"},
			eps:   []string{fmt.Sprintf("10.248.%d.%d", i/250, i%250+1), fmt.Sprintf("10.249.%d.%d", i/250, i%250+1)},
		}
	}
	return out
}

// TestResyncReadConvergesOnlyWhatDiffers: the part of a periodic resync made under the
// caller's lock (ResyncRead) works on the objects that differ, not on every Service: with
// 500 Services and one real server deleted behind kubevs's back, it converges that one
// virtual server and repairs it. (A resync that compares under the lock converges all
// 500 virtual servers, their addresses and set members.)
func TestResyncReadConvergesOnlyWhatDiffers(t *testing.T) {
	ss := many(500)
	f, r := startSynced(t, ss...)
	c := ctx(t)
	want := f.dump()
	key := mustKey("TCP:10.100.0.8:80")
	must(t, f.ipvs.DeleteRealServer(key, ipvs.RealServer{Address: mustAddr("10.248.0.8"), Port: 8080}))
	f.reset()
	rd := r.BeginRead()
	rd.Run(c)
	must(t, r.ResyncRead(c, all(t, ss...), rd))
	if r.resynced != 1 {
		t.Errorf("the resync converged %d objects, want 1 (the virtual server that drifted)", r.resynced)
	}
	f.checkOps(t, "resync", []string{"add-rs TCP:10.100.0.8:80 10.248.0.8:8080 weight 1"})
	if diff := cmp.Diff(want, f.dump()); diff != "" {
		t.Errorf("kernel after the resync (-before the drift +after):\n%s", diff)
	}
}

// TestPartialSyncDuringResyncIsKept pins a partial sync in the middle of a periodic resync,
// with a mutex standing for the daemon's kmu: the resync has read and compared (Run) and
// waits; the partial sync takes the lock, applies and completes; then the resync commits. The partial sync completes first, and the resync
// neither undoes it nor "repairs" the drift it saw on the Service the partial sync changed
// back to the stale state: web lost 10.244.1.5 behind kubevs's back before the read, and the
// partial sync then dropped that endpoint for 10.244.2.7, so the resync must not add it
// again. The drift of a Service the partial sync did not touch (dns lost an address) is
// repaired.
func TestPartialSyncDuringResyncIsKept(t *testing.T) {
	ss := append(many(200), web, dns)
	f, r := startSynced(t, ss...)
	c := ctx(t)
	webKey := mustKey("TCP:10.96.0.10:80")
	must(t, f.ipvs.DeleteRealServer(webKey, ipvs.RealServer{Address: mustAddr("10.244.1.5"), Port: 8080}))
	must(t, f.link.RemoveAddress("kube-ipvs0", mustAddr("10.96.0.53")))

	var kmu sync.Mutex
	desiredAll := all(t, ss...)
	compared, release := make(chan struct{}), make(chan struct{})
	var order []string
	var omu sync.Mutex
	note := func(s string) { omu.Lock(); order = append(order, s); omu.Unlock() }
	done := make(chan error)
	go func() {
		kmu.Lock()
		rd := r.BeginRead()
		kmu.Unlock()
		rd.Run(c) // read and compared: web lacks 10.244.1.5, dns an address
		close(compared)
		<-release
		kmu.Lock()
		defer kmu.Unlock()
		err := r.ResyncRead(c, desiredAll, rd) // the Services as the daemon knows them now
		note("resync")
		done <- err
	}()
	<-compared
	web2 := svc{name: web.name, ip: web.ip, ports: web.ports, eps: []string{"10.244.0.3@local", "10.244.2.7"}}
	kmu.Lock()
	must(t, r.Apply(c, changes(t, web2)))
	desiredAll[nn(web.name)] = web2.compute(t)
	kmu.Unlock()
	note("partial")
	close(release)
	must(t, <-done)
	if diff := cmp.Diff([]string{"partial", "resync"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	// The kernel is what a proxier started afresh on the final Services would program.
	g, _ := startSynced(t, append(many(200), web2, dns)...)
	if diff := cmp.Diff(g.dump(), f.dump()); diff != "" {
		t.Errorf("kernel after the resync (-want +got):\n%s", diff)
	}
	if strings.Contains(f.dump(), "10.244.1.5") {
		t.Errorf("the resync put back 10.244.1.5, which the partial sync removed:\n%s", f.dump())
	}
}

// TestCommitPlanTakesServicesChangedSinceTheSnapshot: commitPlan takes every difference
// between the snapshot and the Services it is given (one changed, one gone, one new),
// whatever made it, and converges their objects.
func TestCommitPlanTakesServicesChangedSinceTheSnapshot(t *testing.T) {
	ss := many(50)
	f, r := startSynced(t, ss...)
	c := ctx(t)
	rd := r.BeginRead()
	rd.Run(c)
	changed := ss[3]
	changed.eps = []string{"10.252.0.1"}
	added := svc{name: "bench/new", ip: "10.97.0.1", ports: []string{"UDP:53"}, eps: []string{"10.252.0.2"}}
	final := append(append([]svc{}, ss[:3]...), changed)
	final = append(append(final, ss[5:]...), added) // ss[4] deleted
	must(t, r.ResyncRead(c, all(t, final...), rd))
	g, _ := startSynced(t, final...)
	if diff := cmp.Diff(g.dump(), f.dump()); diff != "" {
		t.Errorf("kernel after the resync (-want +got):\n%s", diff)
	}
	want := map[types.NamespacedName]desired.Service(all(t, final...))
	if diff := cmp.Diff(want, r.services, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("the Reconciler's Services (-want +got):\n%s", diff)
	}
}
