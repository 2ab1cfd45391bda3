package reconcile

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
)

// sharesWanted reports whether the model's picture of each of s's virtual servers is the
// wanted list itself, not a copy.
func sharesWanted(r *Reconciler, s desired.Service) bool {
	for _, vs := range s.VirtualServers {
		st := r.m.vs[vs.Key]
		if st == nil || !st.shared || len(vs.RealServers) == 0 || &st.rs[0] != &vs.RealServers[0] {
			return false
		}
	}
	return true
}

// TestInSyncVirtualServersShareTheWantedList: a virtual server the kernel holds as wanted
// keeps no copy of its real servers in the model, whether a sync wrote them or a full read
// found them; a change copies the list first, so the computed state a Service was
// compared against (and the cache that keeps it) never changes under it.
func TestInSyncVirtualServersShareTheWantedList(t *testing.T) {
	web := svc{name: "default/web", ip: "10.96.0.10", ports: []string{"TCP:80", "UDP:53"}, eps: []string{"10.244.1.5", "10.244.1.6", "10.244.1.7"}}
	f, r := startSynced(t)
	c := ctx(t)
	first := web.compute(t)
	must(t, r.Apply(c, map[types.NamespacedName]*desired.Service{nn(web.name): &first}))
	if !sharesWanted(r, first) {
		t.Fatal("after the sync that wrote them, the model holds copies of the wanted real servers")
	}

	// One endpoint goes: TCP drains it (weight 0, kept), UDP deletes it. The first list
	// must not change: the model copies before it writes.
	before := first.String()
	fewer := web
	fewer.eps = web.eps[:2]
	second := fewer.compute(t)
	must(t, r.Apply(c, map[types.NamespacedName]*desired.Service{nn(web.name): &second}))
	if got := first.String(); got != before {
		t.Fatalf("a sync changed a computed state it had shared:\n%s\nwas\n%s", got, before)
	}
	tcp, udp := second.VirtualServers[0], second.VirtualServers[1]
	if st := r.m.vs[tcp.Key]; st.shared || len(st.rs) != 3 {
		t.Errorf("TCP with a draining real server: shared %t, %d real servers, want its own 3", st.shared, len(st.rs))
	}
	if st := r.m.vs[udp.Key]; !st.shared || &st.rs[0] != &udp.RealServers[0] {
		t.Error("UDP, in sync once its real server is deleted, does not share the wanted list")
	}

	// A full read makes fresh lists; those the kernel holds as wanted give way to the
	// wanted ones.
	f.reset()
	must(t, r.Resync(c, map[types.NamespacedName]desired.Service{nn(web.name): second}))
	if st := r.m.vs[udp.Key]; !st.shared || &st.rs[0] != &udp.RealServers[0] {
		t.Error("after a full read, the in-sync UDP virtual server holds the read's copy")
	}
	// The resync's drains are over (no connections): the TCP real server is deleted and
	// the virtual server is in sync again.
	if st := r.m.vs[tcp.Key]; !st.shared || &st.rs[0] != &tcp.RealServers[0] {
		t.Error("once its last drain is over, the TCP virtual server does not share the wanted list")
	}
	if err := realServersCounted(r); err != nil {
		t.Error(err)
	}
}
