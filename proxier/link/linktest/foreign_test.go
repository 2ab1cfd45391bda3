package linktest

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/kubevs/kubevs/proxier/link"
)

// What someone else does to the link (ip link set down, ip addr del, ip link del) changes the
// fake as the kernel would, is not recorded, and EnsureDummy undoes the first and the last.
func TestForeignChanges(t *testing.T) {
	f := NewFake()
	a := netip.MustParseAddr("10.96.0.1")
	must(t, f.EnsureDummy(dev))
	must(t, f.AddAddress(dev, a))
	f.ResetOps()
	must(t, f.SetDown(dev))
	if got, want := f.Dump(), "kube-ipvs0 dummy down\n  10.96.0.1/32\n"; got != want {
		t.Errorf("after SetDown: %q, want %q", got, want)
	}
	must(t, f.RemoveAddress(dev, a))
	if err := f.RemoveAddress(dev, a); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("RemoveAddress twice: %v, want ErrNotFound", err)
	}
	must(t, f.Remove(dev))
	if err := f.Remove(dev); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("Remove twice: %v, want ErrNotFound", err)
	}
	if err := f.SetDown(dev); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("SetDown of a removed link: %v, want ErrNotFound", err)
	}
	if ops := f.Ops(); len(ops) != 0 {
		t.Errorf("foreign changes recorded: %q", ops)
	}
	must(t, f.EnsureDummy(dev))
	must(t, f.SetDown(dev))
	must(t, f.EnsureDummy(dev))
	if got, want := f.Dump(), "kube-ipvs0 dummy up\n"; got != want {
		t.Errorf("after EnsureDummy: %q, want %q", got, want)
	}
}
