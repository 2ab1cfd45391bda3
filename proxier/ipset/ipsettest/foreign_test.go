package ipsettest

import (
	"errors"
	"testing"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// Someone else's `ipset flush` and `ipset destroy` change the fake as the kernel would (a set
// a rule holds cannot be destroyed) and are not recorded.
func TestForeignChanges(t *testing.T) {
	f := NewFake()
	s := ipset.Set{Name: "KUBE-CLUSTER-IP", Type: ipset.HashIPPort}
	if err := f.CreateSet(s); err != nil {
		t.Fatal(err)
	}
	if err := f.AddEntries(s.Name, "10.96.0.1,tcp:80"); err != nil {
		t.Fatal(err)
	}
	f.ResetOps()
	if err := f.Flush(s.Name); err != nil {
		t.Fatal(err)
	}
	if es, err := f.Entries(s.Name); err != nil || len(es) != 0 {
		t.Errorf("members after Flush: %q, %v", es, err)
	}
	if err := f.SetInUse(s.Name, true); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(s.Name); !errors.Is(err, ipset.ErrInUse) {
		t.Errorf("Remove of a set in use: %v, want ErrInUse", err)
	}
	if err := f.SetInUse(s.Name, false); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(s.Name); err != nil {
		t.Fatal(err)
	}
	if f.Has(s.Name) {
		t.Errorf("set survived Remove")
	}
	for _, err := range []error{f.Remove(s.Name), f.Flush(s.Name)} {
		if !errors.Is(err, ipset.ErrNotFound) {
			t.Errorf("on a missing set: %v, want ErrNotFound", err)
		}
	}
	if ops := f.Ops(); len(ops) != 1 || ops[0] != "list KUBE-CLUSTER-IP" {
		t.Errorf("Ops = %q, want only the list", ops)
	}
}
