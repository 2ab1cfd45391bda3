package ipsettest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/ipset"
)

func TestFakeSemantics(t *testing.T) {
	f := NewFake()
	lb := ipset.Set{Name: "KUBE-LOOP-BACK", Type: ipset.HashIPPortIP, Comment: "hairpin"}
	if err := f.CreateSet(lb); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateSet(ipset.Set{Name: "KUBE-LOOP-BACK", Type: ipset.HashIP}); !errors.Is(err, ipset.ErrExist) {
		t.Errorf("create over an existing name = %v, want ErrExist", err)
	}
	if err := f.CreateSet(ipset.Set{Name: "KUBE-NODE-PORT-TCP", Type: ipset.BitmapPort, PortFrom: 30000, PortTo: 32767}); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateSet(ipset.Set{Name: "KUBE-CLUSTER-IP-6", Type: ipset.HashIPPort, Family: ipset.IPv6}); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateSet(ipset.Set{Name: "bad", Type: ipset.BitmapPort}); err == nil {
		t.Errorf("bitmap:port without a range was accepted")
	}
	// Misfits are rejected, the rest lands, in canonical form.
	err := f.AddEntries("KUBE-LOOP-BACK", "10.244.0.2,TCP:8080,10.244.0.2", "fd00::2,tcp:80,fd00::2", "10.244.0.2,tcp:8080,10.244.0.2")
	if err == nil {
		t.Errorf("an IPv6 member in an inet set was accepted")
	}
	if err := f.AddEntries("KUBE-NODE-PORT-TCP", "30080", "80"); err == nil {
		t.Errorf("a port outside the bitmap's range was accepted")
	}
	if err := f.AddEntries("KUBE-CLUSTER-IP-6", "fd00::a,udp:53", "10.0.0.1,udp:53"); err == nil {
		t.Errorf("an IPv4 member in an inet6 set was accepted")
	}
	if err := f.DeleteEntries("KUBE-CLUSTER-IP-6", "fd00::b,udp:53"); err != nil {
		t.Errorf("deleting an absent member: %v", err)
	}
	if err := f.AddEntries("NOPE", "10.0.0.1"); !errors.Is(err, ipset.ErrNotFound) {
		t.Errorf("add to a missing set = %v, want ErrNotFound", err)
	}
	if _, err := f.Entries("NOPE"); !errors.Is(err, ipset.ErrNotFound) {
		t.Errorf("list a missing set = %v, want ErrNotFound", err)
	}
	if err := f.SetInUse("KUBE-NODE-PORT-TCP", true); err != nil {
		t.Fatal(err)
	}
	if err := f.DestroySet("KUBE-NODE-PORT-TCP"); !errors.Is(err, ipset.ErrInUse) {
		t.Errorf("destroy a set in use = %v, want ErrInUse", err)
	}
	if err := f.DestroySet("NOPE"); !errors.Is(err, ipset.ErrNotFound) {
		t.Errorf("destroy a missing set = %v, want ErrNotFound", err)
	}
	want := `set KUBE-CLUSTER-IP-6 hash:ip,port inet6
  fd00::a,udp:53
set KUBE-LOOP-BACK hash:ip,port,ip inet comment "hairpin"
  10.244.0.2,tcp:8080,10.244.0.2
set KUBE-NODE-PORT-TCP bitmap:port range 30000-32767 in-use
  30080
`
	if diff := cmp.Diff(want, f.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
	got, err := f.Sets()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"KUBE-CLUSTER-IP-6", "KUBE-LOOP-BACK", "KUBE-NODE-PORT-TCP"}, got); diff != "" {
		t.Errorf("Sets (-want +got):\n%s", diff)
	}
}

func TestFakeOpsAndFailures(t *testing.T) {
	f := NewFake()
	if err := f.CreateSet(ipset.Set{Name: "S", Type: ipset.HashIP}); err != nil {
		t.Fatal(err)
	}
	f.ResetOps()
	boom := errors.New("boom")
	f.FailNext(OpAdd, boom)
	if err := f.AddEntries("S", "10.0.0.1"); !errors.Is(err, boom) {
		t.Fatalf("injected failure = %v, want boom", err)
	}
	if err := f.AddEntries("S", "10.0.0.1", "10.0.0.2"); err != nil {
		t.Fatalf("retry after the injected failure: %v", err)
	}
	if err := f.AddEntries("S"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Entries("S"); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteEntries("S", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if err := f.DestroySet("S"); err != nil {
		t.Fatal(err)
	}
	if err := f.DestroySet("S"); !errors.Is(err, ipset.ErrNotFound) {
		t.Fatalf("second destroy = %v, want ErrNotFound", err)
	}
	want := []string{
		"add S 10.0.0.1 (failed)",
		"add S 10.0.0.1 10.0.0.2",
		"list S",
		"del S 10.0.0.2",
		"destroy S",
		"destroy S (failed)",
	}
	if diff := cmp.Diff(want, f.Ops()); diff != "" {
		t.Errorf("Ops (-want +got):\n%s", diff)
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake()
	if err := f.CreateSet(ipset.Set{Name: "S", Type: ipset.HashIPPort}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				e := ipset.Entry(fmt.Sprintf("10.0.%d.%d,tcp:80", g, i))
				if err := f.AddEntries("S", e); err != nil {
					t.Error(err)
				}
				_ = f.Dump()
			}
		})
	}
	wg.Wait()
	got, err := f.Entries("S")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 400 {
		t.Errorf("got %d entries, want 400", len(got))
	}
}

// TestInjection fails every verb by FailNext and by a hook, on calls that would otherwise
// change the table.
func TestInjection(t *testing.T) {
	f := NewFake()
	if err := f.CreateSet(ipset.Set{Name: "S", Type: ipset.HashIP}); err != nil {
		t.Fatal(err)
	}
	if err := f.AddEntries("S", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	kfake.CheckInjection(t, f.Log, f.Dump, []kfake.Injection{
		{Op: OpSets, Record: true, Call: func() error { _, err := f.Sets(); return err }},
		{Op: OpCreate, Target: "T hash:ip inet", Record: true, Call: func() error { return f.CreateSet(ipset.Set{Name: "T", Type: ipset.HashIP}) }},
		{Op: OpDestroy, Target: "S", Record: true, Call: func() error { return f.DestroySet("S") }},
		{Op: OpList, Target: "S", Record: true, Call: func() error { _, err := f.Entries("S"); return err }},
		{Op: OpAdd, Target: "S 10.0.0.2 10.0.0.3", Record: true, Call: func() error { return f.AddEntries("S", "10.0.0.2", "10.0.0.3") }},
		{Op: OpDel, Target: "S 10.0.0.1", Record: true, Call: func() error { return f.DeleteEntries("S", "10.0.0.1") }},
	})
}
