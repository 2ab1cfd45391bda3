package netfiltertest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
)

// Someone else's `iptables -F CHAIN` and `iptables -F` empty the chains (jumps from the
// built-in chains included) without recording anything, and Repair puts back exactly the
// tables that changed, then reports nothing to do.
func TestFlushThenRepair(t *testing.T) {
	sets := ipsettest.NewFake()
	if err := sets.CreateSet(ipset.Set{Name: "KUBE-CLUSTER-IP", Type: ipset.HashIPPort}); err != nil {
		t.Fatal(err)
	}
	f := NewFake()
	f.UseSets(sets)
	rs := rules("0x4000")
	if err := f.Ensure(v4, rs); err != nil {
		t.Fatal(err)
	}
	before := f.Save()
	f.ResetOps()
	if err := f.Flush(v4, "nat", "KUBE-SERVICES"); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(v4, "filter", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(v4, "nat", "NO-SUCH-CHAIN"); err == nil {
		t.Errorf("Flush of a missing chain succeeded")
	}
	if len(f.Ops()) != 0 {
		t.Errorf("Flush recorded %q", f.Ops())
	}
	if f.Save() == before {
		t.Fatalf("Flush changed nothing")
	}
	got, err := f.Repair(v4, rs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"filter", "nat"}, got); diff != "" {
		t.Errorf("Repair rewrote (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, f.Save()); diff != "" {
		t.Errorf("after Repair (-before +after):\n%s", diff)
	}
	if got, err := f.Repair(v4, rs); err != nil || got != nil {
		t.Errorf("second Repair = %q, %v; want nothing", got, err)
	}
	want := []string{"ensure inet", "restore inet filter", "restore inet nat", "ensure inet"}
	if diff := cmp.Diff(want, f.Ops()); diff != "" {
		t.Errorf("Ops (-want +got):\n%s", diff)
	}
}
