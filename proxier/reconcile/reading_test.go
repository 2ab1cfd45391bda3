package reconcile

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
)

// readThenResync is a periodic resync taken apart: BeginRead, Run, ResyncRead.
func readThenResync(c context.Context, r *Reconciler, all map[types.NamespacedName]desired.Service) error {
	rd := r.BeginRead()
	rd.Run(c)
	return errors.Join(r.ResyncRead(c, all, rd), realServersCounted(r))
}

// TestResyncReadRepairsDrift: a resync from a read made without the lock repairs every
// drift case Resync repairs, with the same writes and the same Drift.
func TestResyncReadRepairsDrift(t *testing.T) { testRepairsDrift(t, readThenResync) }

// TestResyncReadReadsNothingUnderTheLock: with nothing changed, ResyncRead itself lists no
// virtual server, real server or address and runs no iptables-save: all of it was read by
// Run. Only the set list (ensureSets) is read again.
func TestResyncReadReadsNothingUnderTheLock(t *testing.T) {
	f, r := startSynced(t, web, dns)
	c := ctx(t)
	must(t, r.Resync(c, all(t, web, dns)))
	rd := r.BeginRead()
	rd.Run(c)
	f.reset()
	must(t, r.ResyncRead(c, all(t, web, dns), rd))
	f.checkOps(t, "resync", nil)
	for op, n := range map[string]int{
		"list-vs": f.ipvs.Calls(ipvstest.OpVirtualServers), "list-rs": f.ipvs.Calls(ipvstest.OpRealServers),
		"list-rs-table": f.ipvs.Calls(ipvstest.OpRealServerTable),
		"list-addr":     f.link.Calls("list-addr"), "ensure (iptables-save)": f.nf.Calls(netfiltertest.OpEnsure),
		"verify": f.nf.Calls(netfiltertest.OpVerify),
	} {
		if n != 0 {
			t.Errorf("ResyncRead: %d calls of %s, want 0", n, op)
		}
	}
}

// TestResyncReadKeepsWritesMadeDuringTheRead: partial syncs that run after the read (so
// the read is stale for what they touched: a Service deleted, one added, an endpoint
// added) are neither undone nor taken for drift: the resync writes nothing.
func TestResyncReadKeepsWritesMadeDuringTheRead(t *testing.T) {
	f, r := startSynced(t, web, dns)
	c := ctx(t)
	must(t, r.Resync(c, all(t, web, dns)))
	rd := r.BeginRead()
	rd.Run(c)
	web2 := web
	web2.eps = append(web2.eps, "10.244.1.6")
	api := svc{name: "default/api", ip: "10.96.0.20", ports: []string{"TCP:443"}, eps: []string{"10.244.2.1"}}
	must(t, r.Apply(c, changes(t, web2, svc{name: dns.name}, api)))
	resyncKeepsPartialSyncs(t, f, r, rd, all(t, web2, api))
}

// resyncKeepsPartialSyncs commits rd (a read that partial syncs overtook) with all, and
// checks that it writes nothing, leaves the kernel as they did and counts no drift.
func resyncKeepsPartialSyncs(t *testing.T, f *fakes, r *Reconciler, rd *Reading, all map[types.NamespacedName]desired.Service) {
	t.Helper()
	after := f.dump()
	f.reset()
	must(t, r.ResyncRead(ctx(t), all, rd))
	f.checkOps(t, "resync after the partial syncs", nil)
	if diff := cmp.Diff(after, f.dump()); diff != "" {
		t.Errorf("the resync changed the kernel (-after the partial syncs +after the resync):\n%s", diff)
	}
	if d := r.Drift(); !d.IsZero() {
		t.Errorf("Drift = %+v, want none: kubevs's own writes are no drift", d)
	}
}

// TestResyncReadFallsBack: a read that failed, one older than SetOptions or a Resync, or
// one during which a write failed is not used: ResyncRead reads the kernel itself.
func TestResyncReadFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		during func(t *testing.T, f *fakes, r *Reconciler)
		before func(f *fakes) // before Run
	}{
		{name: "the read failed", before: func(f *fakes) { f.ipvs.FailNext(ipvstest.OpVirtualServers, errors.New("boom")) }},
		{name: "options changed", during: func(t *testing.T, _ *fakes, r *Reconciler) { must(t, r.SetOptions(ctx(t), testOpts)) }},
		{name: "a resync ran", during: func(t *testing.T, _ *fakes, r *Reconciler) { must(t, r.Resync(ctx(t), all(t, web, dns))) }},
		{name: "a write failed", during: func(t *testing.T, f *fakes, r *Reconciler) {
			f.ipset.FailNext("add", errors.New("boom"))
			api := svc{name: "default/api", ip: "10.96.0.20", ports: []string{"TCP:443"}, eps: []string{"10.244.2.1"}}
			if err := r.Apply(ctx(t), changes(t, api)); err == nil {
				t.Fatal("Apply did not fail")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, r := startSynced(t, web, dns)
			c := ctx(t)
			must(t, r.Resync(c, all(t, web, dns)))
			rd := r.BeginRead()
			if tc.before != nil {
				tc.before(f)
			}
			rd.Run(c)
			if tc.during != nil {
				tc.during(t, f, r)
			}
			f.reset()
			must(t, r.ResyncRead(c, all(t, web, dns), rd))
			if n := f.ipvs.Calls(ipvstest.OpVirtualServers); n != 1 {
				t.Errorf("ResyncRead listed the virtual servers %d times, want 1 (a read under the lock)", n)
			}
		})
	}
}

// TestResyncReadRepairsOnlyRulesThatDiffer: the fixed rules Run verified clean are not read
// again; a family Run found changed is repaired under the lock (read again, rewritten).
func TestResyncReadRepairsOnlyRulesThatDiffer(t *testing.T) {
	f, r := startSynced(t, web, dns)
	c := ctx(t)
	must(t, r.Resync(c, all(t, web, dns)))
	rd := r.BeginRead()
	rd.Run(c)
	f.reset()
	must(t, r.ResyncRead(c, all(t, web, dns), rd))
	if n := f.nf.Calls(netfiltertest.OpEnsure); n != 0 {
		t.Errorf("clean rules: %d Repairs under the lock, want 0", n)
	}
	rd = r.BeginRead()
	must(t, f.nf.Flush(ipset.IPv4, "nat", "KUBE-SERVICES"))
	rd.Run(c)
	f.reset()
	must(t, r.ResyncRead(c, all(t, web, dns), rd))
	f.checkOps(t, "repair", []string{"restore inet nat"})
	if got := r.Drift().Rules; got != 1 {
		t.Errorf("Drift.Rules = %d, want 1", got)
	}
}

// TestResyncReadSetDestroyedAfterTheRead: a set destroyed after the read (which saw its
// members) is created again by the resync and filled again: the read's members of a set
// the resync had to create are not taken for present.
func TestResyncReadSetDestroyedAfterTheRead(t *testing.T) {
	f, r := startSynced(t, web, dns)
	c := ctx(t)
	must(t, r.Resync(c, all(t, web, dns)))
	before := f.dump()
	must(t, f.nf.Flush(ipset.IPv4, "nat", "")) // the rules that use the set go first
	rd := r.BeginRead()
	rd.Run(c)
	must(t, f.ipset.Remove("KUBE-LOOP-BACK"))
	f.reset()
	must(t, r.ResyncRead(c, all(t, web, dns), rd))
	f.checkOps(t, "resync", []string{
		"create KUBE-LOOP-BACK hash:ip,port,ip inet",
		"add KUBE-LOOP-BACK 10.244.0.3,tcp:8080,10.244.0.3",
		"restore inet nat",
	})
	if diff := cmp.Diff(before, f.dump()); diff != "" {
		t.Errorf("kernel after the resync (-before +after):\n%s", diff)
	}
}
