package reconcile

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
)

// holdFullRead makes the last full read look as recent and as costly as the budget
// allows: the next Reading probes.
func holdFullRead(r *Reconciler) {
	r.opts.FullReadBudget = 0.01
	r.lastFullRead, r.fullReadCost = r.opts.Now(), time.Second
}

// probeThenResync is a periodic resync whose read is a probe (escalated or not).
func probeThenResync(c context.Context, r *Reconciler, all map[types.NamespacedName]desired.Service) error {
	holdFullRead(r)
	rd := r.BeginRead()
	rd.Run(c)
	if rd.Kind() == ReadFull {
		return fmt.Errorf("the read was %s, want a probe", rd.Kind())
	}
	return errors.Join(r.ResyncRead(c, all, rd), realServersCounted(r))
}

// TestProbeRepairsDrift: a resync whose read is a probe repairs every drift case a full
// read repairs, with the same writes and the same Drift: what the probe does not cover
// (the rules, the link's state) the resync itself checks, and what it covers differs and
// makes it read everything.
func TestProbeRepairsDrift(t *testing.T) { testRepairsDrift(t, probeThenResync) }

// TestProbeFindsVirtualServerDrift: the IPVS faults a probe covers (a virtual server gone,
// a real server gone, added or reweighted: every virtual server here is in the sample) and
// a member added to an owned set make it read everything, and the resync puts the kernel
// back. Without the escalation each would stay until the next full read.
func TestProbeFindsVirtualServerDrift(t *testing.T) {
	webKey, dnsKey := mustKey("TCP:10.96.0.10:80"), mustKey("UDP:10.96.0.53:53")
	for _, tc := range []struct {
		name  string
		drift func(*testing.T, *fakes)
	}{
		{"ipvsadm -D", func(t *testing.T, f *fakes) { must(t, f.ipvs.DeleteVirtualServer(webKey)) }},
		{"ipvsadm -d", func(t *testing.T, f *fakes) { must(t, f.ipvs.DeleteRealServer(dnsKey, rsAt("10.244.3.1:8053", 1))) }},
		{"ipvsadm -a", func(t *testing.T, f *fakes) { must(t, f.ipvs.AddRealServer(dnsKey, rsAt("10.244.9.9:8053", 1))) }},
		{"ipvsadm -e -w 5", func(t *testing.T, f *fakes) { must(t, f.ipvs.UpdateRealServer(dnsKey, rsAt("10.244.3.2:8053", 5))) }},
		{"ipset add KUBE-CLUSTER-IP", func(t *testing.T, f *fakes) {
			must(t, f.ipset.AddEntries("KUBE-CLUSTER-IP", "10.96.9.9,tcp:80"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, r := startSynced(t, web, dns)
			c := ctx(t)
			must(t, probeThenResync(c, r, all(t, web, dns)))
			f.checkOps(t, "probe without drift", nil)
			before := f.dump()
			tc.drift(t, f)
			f.reset()
			holdFullRead(r)
			rd := r.BeginRead()
			rd.Run(c)
			if rd.Kind() != ReadEscalated {
				t.Fatalf("the read was %q, want %q", rd.Kind(), ReadEscalated)
			}
			f.reset()
			must(t, r.ResyncRead(c, all(t, web, dns), rd))
			if n := f.ipvs.Calls(ipvstest.OpVirtualServers); n != 0 {
				t.Errorf("ResyncRead listed the virtual servers %d times under the lock; the escalated read had", n)
			}
			if diff := cmp.Diff(before, f.dump()); diff != "" {
				t.Errorf("kernel after the repair (-before +after):\n%s", diff)
			}
			f.reset()
			must(t, probeThenResync(c, r, all(t, web, dns)))
			f.checkOps(t, "probe after the repair", nil)
		})
	}
}

// TestProbeReadsLittle: on a kernel as the model holds it, a probe of 100 virtual servers
// reads the real servers of ProbeSample of them, lists neither the virtual servers nor any
// set's members (it counts them) and reads no real-server table; the resync after it writes
// nothing.
func TestProbeReadsLittle(t *testing.T) {
	var ss []svc
	for i := range 100 {
		ss = append(ss, svc{name: fmt.Sprintf("default/s%d", i), ip: fmt.Sprintf("10.96.1.%d", i), ports: []string{"TCP:80"}, eps: []string{"10.244.1.5"}})
	}
	f, r := startSynced(t, ss...)
	c := ctx(t)
	holdFullRead(r)
	rd := r.BeginRead()
	rd.Run(c)
	if rd.Kind() != ReadProbe {
		t.Fatalf("the read was %q, want %q", rd.Kind(), ReadProbe)
	}
	for op, tc := range map[string]struct{ got, want int }{
		"list-rs":       {f.ipvs.Calls(ipvstest.OpRealServers), ProbeSample},
		"list-rs-table": {f.ipvs.Calls(ipvstest.OpRealServerTable), 0},
		"list-vs":       {f.ipvs.Calls(ipvstest.OpVirtualServers), 0},
		"list-set":      {f.ipset.Calls(ipsettest.OpList), 0},
	} {
		if tc.got != tc.want {
			t.Errorf("probe: %d calls of %s, want %d", tc.got, op, tc.want)
		}
	}
	if f.ipset.Calls(ipsettest.OpCount) == 0 {
		t.Error("probe: no set counted")
	}
	f.reset()
	must(t, r.ResyncRead(c, all(t, ss...), rd))
	f.checkOps(t, "resync after a clean probe", nil)
}

// TestProbeKeepsWritesMadeDuringIt: partial syncs between BeginRead and Run make the kernel
// differ from the probe's copy: it reads everything, and the resync neither undoes them nor
// takes them for drift. A change that comes with the resync itself (all) is applied.
func TestProbeKeepsWritesMadeDuringIt(t *testing.T) {
	f, r := startSynced(t, web, dns)
	c := ctx(t)
	holdFullRead(r)
	rd := r.BeginRead()
	web2 := web
	web2.eps = append(web2.eps, "10.244.1.6")
	api := svc{name: "default/api", ip: "10.96.0.20", ports: []string{"TCP:443"}, eps: []string{"10.244.2.1"}}
	must(t, r.Apply(c, changes(t, web2, svc{name: dns.name}, api)))
	rd.Run(c)
	if rd.Kind() != ReadEscalated {
		t.Fatalf("the read was %q, want %q", rd.Kind(), ReadEscalated)
	}
	resyncKeepsPartialSyncs(t, f, r, rd, all(t, web2, api))

	// A clean probe whose resync brings a change: the change is converged.
	holdFullRead(r)
	rd = r.BeginRead()
	rd.Run(c)
	if rd.Kind() != ReadProbe {
		t.Fatalf("the read was %q, want %q", rd.Kind(), ReadProbe)
	}
	f.reset()
	must(t, r.ResyncRead(c, all(t, web2, api, dns), rd))
	if w := f.writes(); len(w) == 0 || w[0] != "add-vs TCP:10.96.0.53:53 rr" {
		t.Errorf("resync of a clean probe that brings dns back: writes %q, want dns's virtual servers first", w)
	}
	want := f.dump()
	f2, _ := startSynced(t, web2, api, dns)
	if diff := cmp.Diff(f2.dump(), want); diff != "" {
		t.Errorf("kernel after the clean probe's resync (-synced from scratch +got):\n%s", diff)
	}
}

// TestEscalatedProbePlansWithoutTheLock: a probe that finds a virtual server gone reads
// everything; the caller then has the Services copied (CopyServices, under its lock) and the
// read compared with them without it (Plan), so ResyncRead only commits. Partial syncs
// between the read and the copy, and between the plan and the resync, are neither undone
// nor taken for drift; the lost virtual server is repaired; the kernel ends as a sync from
// scratch of the final Services.
func TestEscalatedProbePlansWithoutTheLock(t *testing.T) {
	f, r := startSynced(t, web, dns)
	c := ctx(t)
	must(t, f.ipvs.DeleteVirtualServer(mustKey("UDP:10.96.0.53:53")))
	holdFullRead(r)
	rd := r.BeginRead()
	rd.Run(c)
	if rd.Kind() != ReadEscalated || !rd.NeedsServices() {
		t.Fatalf("the read was %q (needs Services: %v), want an escalated probe waiting for them", rd.Kind(), rd.NeedsServices())
	}
	api := svc{name: "default/api", ip: "10.96.0.20", ports: []string{"TCP:443"}, eps: []string{"10.244.2.1"}}
	must(t, r.Apply(c, changes(t, api))) // after the read, before the copy
	r.CopyServices(rd)
	rd.Plan()
	if rd.NeedsServices() || rd.plan == nil {
		t.Fatalf("after CopyServices and Plan: needs Services %v, plan %v; want a plan", rd.NeedsServices(), rd.plan != nil)
	}
	web2 := web
	web2.eps = append(web2.eps, "10.244.1.6")
	must(t, r.Apply(c, changes(t, web2))) // after the plan
	f.reset()
	must(t, r.ResyncRead(c, all(t, web2, dns, api), rd))
	if n := f.ipvs.Calls(ipvstest.OpVirtualServers); n != 0 {
		t.Errorf("ResyncRead listed the virtual servers %d times under the lock; the read had", n)
	}
	want, _ := startSynced(t, web2, dns, api)
	if diff := cmp.Diff(want.dump(), f.dump()); diff != "" {
		t.Errorf("kernel after the escalated probe's resync (-synced from scratch +got):\n%s", diff)
	}
	if d := r.Drift(); d.VirtualServers != 1 {
		t.Errorf("Drift = %+v, want the one virtual server deleted behind kubevs's back", d)
	}
}

// TestFullReadFollowsTheBudget: a full read is due when the time since the last one began is
// at least its cost over the budget, at most MaxFullReadInterval; with no budget or none
// since Start, always. A full read (or an escalated probe) restarts the count; a probe does
// not.
func TestFullReadFollowsTheBudget(t *testing.T) {
	f, r := startSynced(t, web, dns)
	c := ctx(t)
	t0 := f.now
	if !r.fullReadDue() {
		t.Error("no full read since Start: want one due")
	}
	r.opts.FullReadBudget = 0.01
	r.lastFullRead, r.fullReadCost = t0, 2*time.Second
	for _, tc := range []struct {
		after time.Duration
		due   bool
	}{{0, false}, {199 * time.Second, false}, {200 * time.Second, true}} {
		f.now = t0.Add(tc.after)
		if got := r.fullReadDue(); got != tc.due {
			t.Errorf("cost 2s, budget 1%%, %v after: due = %v, want %v", tc.after, got, tc.due)
		}
	}
	r.fullReadCost = 10 * time.Hour
	f.now = t0.Add(MaxFullReadInterval - time.Second)
	if r.fullReadDue() {
		t.Error("cost 10h: due before MaxFullReadInterval")
	}
	f.now = t0.Add(MaxFullReadInterval)
	if !r.fullReadDue() {
		t.Error("cost 10h: not due at MaxFullReadInterval")
	}
	r.opts.FullReadBudget = 0
	f.now = t0
	if !r.fullReadDue() {
		t.Error("no budget: want every read full")
	}

	// Through the Readings: a probe leaves the count alone, a full read restarts it.
	r.opts.FullReadBudget = 0.01
	r.fullReadCost = 2 * time.Second
	f.now = t0.Add(100 * time.Second)
	rd := r.BeginRead()
	rd.Run(c)
	must(t, r.ResyncRead(c, all(t, web, dns), rd))
	if rd.Kind() != ReadProbe || !r.lastFullRead.Equal(t0) {
		t.Errorf("at 100s: read %q, last full read %v; want a probe, %v", rd.Kind(), r.lastFullRead, t0)
	}
	f.now = t0.Add(200 * time.Second)
	rd = r.BeginRead()
	rd.Run(c)
	must(t, r.ResyncRead(c, all(t, web, dns), rd))
	if rd.Kind() != ReadFull || !r.lastFullRead.Equal(f.now) || r.fullReadCost != 0 {
		t.Errorf("at 200s: read %q, last full read %v costing %v; want a full read, %v, 0 (the fake clock stands still)",
			rd.Kind(), r.lastFullRead, r.fullReadCost, f.now)
	}
}

// TestProbeCountsOnlyOwnedSets: members of a set kubevs does not own never make a probe
// differ.
func TestProbeCountsOnlyOwnedSets(t *testing.T) {
	f, r := startSynced(t, web, dns)
	must(t, f.ipset.CreateSet(ipset.Set{Name: "OTHER", Type: ipset.HashIP}))
	must(t, f.ipset.AddEntries("OTHER", "10.1.1.1"))
	holdFullRead(r)
	rd := r.BeginRead()
	rd.Run(ctx(t))
	if rd.Kind() != ReadProbe {
		t.Errorf("the read was %q, want %q", rd.Kind(), ReadProbe)
	}
}
