package linktest

import (
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/link"
)

const dev = link.DefaultDummy

var (
	vip4 = netip.MustParseAddr("10.96.0.1")
	vip6 = netip.MustParseAddr("fd00::1")
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestKernelSemantics(t *testing.T) {
	tests := []struct {
		name    string
		do      func(f *Fake) error
		wantErr error
	}{
		{"ensure twice is fine", func(f *Fake) error { return f.EnsureDummy(dev) }, nil},
		{"ensure over a foreign link", func(f *Fake) error { return f.EnsureDummy("eth0") }, link.ErrNotDummy},
		{"delete a foreign link", func(f *Fake) error { return f.DeleteDummy("eth0") }, link.ErrNotDummy},
		{"delete absent link", func(f *Fake) error { return f.DeleteDummy("nope") }, link.ErrNotFound},
		{"list absent link", func(f *Fake) error { _, err := f.Addresses("nope"); return err }, link.ErrNotFound},
		{"add twice", func(f *Fake) error { return f.AddAddress(dev, vip4) }, link.ErrExist},
		{"add mapped form of a bound address", func(f *Fake) error {
			return f.AddAddress(dev, netip.AddrFrom16(vip4.As16()))
		}, link.ErrExist},
		{"add to absent link", func(f *Fake) error { return f.AddAddress("nope", vip6) }, link.ErrNotFound},
		{"delete unbound", func(f *Fake) error { return f.DeleteAddress(dev, vip6) }, link.ErrNotFound},
		{"delete from absent link", func(f *Fake) error { return f.DeleteAddress("nope", vip4) }, link.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake()
			f.AddForeignLink("eth0")
			must(t, f.EnsureDummy(dev))
			must(t, f.AddAddress(dev, vip4))
			before := f.Dump()
			if err := tt.do(f); !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(before, f.Dump()); diff != "" {
				t.Errorf("table changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestSequence(t *testing.T) {
	f := NewFake()
	f.AddForeignLink("eth0")
	must(t, f.EnsureDummy(dev))
	must(t, f.AddAddress(dev, vip6))
	must(t, f.AddAddress(dev, vip4))
	must(t, f.AddAddress(dev, netip.MustParseAddr("10.96.0.10")))
	must(t, f.DeleteAddress(dev, vip4))
	got, err := f.Addresses(dev)
	must(t, err)
	want := []netip.Addr{netip.MustParseAddr("10.96.0.10"), vip6}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	wantDump := "eth0 other up\nkube-ipvs0 dummy up\n  10.96.0.10/32\n  fd00::1/128\n"
	if diff := cmp.Diff(wantDump, f.Dump()); diff != "" {
		t.Errorf("dump (-want +got):\n%s", diff)
	}
	wantOps := []string{
		"ensure-dummy kube-ipvs0",
		"add-addr kube-ipvs0 fd00::1",
		"add-addr kube-ipvs0 10.96.0.1",
		"add-addr kube-ipvs0 10.96.0.10",
		"delete-addr kube-ipvs0 10.96.0.1",
	}
	if diff := cmp.Diff(wantOps, f.Ops()); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	if f.Calls(OpAddresses) != 1 {
		t.Errorf("Calls(list-addr) = %d", f.Calls(OpAddresses))
	}
	must(t, f.DeleteDummy(dev))
	must(t, f.EnsureDummy(dev))
	if got, _ := f.Addresses(dev); len(got) != 0 {
		t.Errorf("recreated link kept addresses %v", got)
	}
}

// TestInjection fails every operation by FailNext and by a hook, on calls that would
// otherwise change the links.
func TestInjection(t *testing.T) {
	f := NewFake()
	must(t, f.EnsureDummy("old"))
	must(t, f.AddAddress("old", vip4))
	f.ResetOps()
	kfake.CheckInjection(t, f.Log, f.Dump, []kfake.Injection{
		{Op: OpEnsureDummy, Target: "kube-ipvs0", Record: true, Call: func() error { return f.EnsureDummy(dev) }},
		{Op: OpDeleteDummy, Target: "old", Record: true, Call: func() error { return f.DeleteDummy("old") }},
		{Op: OpAddresses, Target: "old", Call: func() error { _, err := f.Addresses("old"); return err }},
		{Op: OpAddAddress, Target: "old fd00::1", Record: true, Call: func() error { return f.AddAddress("old", vip6) }},
		{Op: OpDeleteAddress, Target: "old 10.96.0.1", Record: true, Call: func() error { return f.DeleteAddress("old", vip4) }},
	})
}

func TestConcurrentUse(t *testing.T) {
	f := NewFake()
	must(t, f.EnsureDummy(dev))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			a := netip.AddrFrom4([4]byte{10, 96, 1, byte(i)})
			for range 50 {
				_ = f.AddAddress(dev, a)
				_, _ = f.Addresses(dev)
				_ = f.DeleteAddress(dev, a)
			}
		})
	}
	wg.Wait()
	if got, err := f.Addresses(dev); err != nil || len(got) != 0 {
		t.Errorf("after balanced adds and deletes: %v %v", got, err)
	}
}
