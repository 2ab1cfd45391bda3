package link

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/vishvananda/netlink"
)

var addrs = cmpopts.EquateComparable(netip.Addr{})

// newLinks opens the real implementation in the calling thread's namespace, closed at the end.
func newLinks(t *testing.T) Interface {
	t.Helper()
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.(io.Closer).Close() })
	return l
}

// exercise runs the address contract on link dev: adds, duplicate, listing, deletes.
func exercise(t *testing.T, l Interface, dev string) {
	t.Helper()
	v4, v6 := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("fd00::1")
	for _, a := range []netip.Addr{v4, v6, netip.MustParseAddr("10.96.0.10")} {
		if err := l.AddAddress(dev, a); err != nil {
			t.Fatalf("add %s: %v", a, err)
		}
	}
	if err := l.AddAddress(dev, v4); !errors.Is(err, ErrExist) {
		t.Errorf("add twice: %v, want ErrExist", err)
	}
	if err := l.AddAddress(dev, netip.MustParseAddr("::ffff:10.96.0.1")); !errors.Is(err, ErrExist) {
		t.Errorf("add v4-mapped form of a bound address: %v, want ErrExist", err)
	}
	got, err := l.Addresses(dev)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{v4, netip.MustParseAddr("10.96.0.10"), v6}
	if diff := cmp.Diff(want, got, addrs); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if err := l.DeleteAddress(dev, v4); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteAddress(dev, v4); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v, want ErrNotFound", err)
	}
	if err := l.DeleteAddress(dev, netip.MustParseAddr("fd00::99")); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete absent v6: %v, want ErrNotFound", err)
	}
	for _, a := range []netip.Addr{v6, netip.MustParseAddr("10.96.0.10")} {
		if err := l.DeleteAddress(dev, a); err != nil {
			t.Errorf("delete %s: %v", a, err)
		}
	}
	if got, err := l.Addresses(dev); err != nil || len(got) != 0 {
		t.Errorf("after deleting all: %v, %v", got, err)
	}
}

// TestAddressesOnLoopback runs the address half of the contract on lo in a fresh namespace on
// the host, whose kernel has no dummy links: lo keeps 127.0.0.1/8 and ::1/128, and only the
// host-prefix ones kubevs binds may be listed besides ::1.
func TestAddressesOnLoopback(t *testing.T) {
	testenv.InNetns(t, func() {
		l := newLinks(t)
		before, err := l.Addresses("lo")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range before {
			if a != netip.IPv6Loopback() {
				t.Errorf("fresh lo lists %s", a)
			}
		}
		// Drop ::1 so that exercise sees only its own addresses.
		for _, a := range before {
			if err := l.DeleteAddress("lo", a); err != nil {
				t.Fatal(err)
			}
		}
		exercise(t, l, "lo")
		if err := l.EnsureDummy("lo"); !errors.Is(err, ErrNotDummy) {
			t.Errorf("EnsureDummy(lo): %v, want ErrNotDummy", err)
		}
		if err := l.DeleteDummy("lo"); !errors.Is(err, ErrNotDummy) {
			t.Errorf("DeleteDummy(lo): %v, want ErrNotDummy", err)
		}
		for _, err := range []error{
			l.DeleteDummy("nope0"),
			l.AddAddress("nope0", netip.MustParseAddr("10.0.0.1")),
			l.DeleteAddress("nope0", netip.MustParseAddr("10.0.0.1")),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("on an absent link: %v, want ErrNotFound", err)
			}
		}
		if _, err := l.Addresses("nope0"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Addresses of an absent link: %v, want ErrNotFound", err)
		}
	})
}

// TestDummyInVM creates kube-ipvs0 for real; dummy links exist only in the test VM's kernel.
func TestDummyInVM(t *testing.T) {
	testenv.RequireVM(t)
	testenv.InNetns(t, func() {
		l := newLinks(t)
		for range 2 { // idempotent
			if err := l.EnsureDummy(DefaultDummy); err != nil {
				t.Fatalf("EnsureDummy: %v", err)
			}
		}
		nl, err := netlink.LinkByName(DefaultDummy)
		if err != nil {
			t.Fatal(err)
		}
		if nl.Type() != "dummy" || nl.Attrs().Flags&net.FlagUp == 0 {
			t.Fatalf("kube-ipvs0 is %s with flags %v, want an up dummy", nl.Type(), nl.Attrs().Flags)
		}
		exercise(t, l, DefaultDummy)

		// Set down by someone else: EnsureDummy brings it back up.
		if err := netlink.LinkSetDown(nl); err != nil {
			t.Fatal(err)
		}
		if err := l.EnsureDummy(DefaultDummy); err != nil {
			t.Fatal(err)
		}
		if nl, err = netlink.LinkByName(DefaultDummy); err != nil || nl.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("EnsureDummy left the link down (%v)", err)
		}
		// The kernel's link-local address on the up dummy is not listed.
		if err := l.AddAddress(DefaultDummy, netip.MustParseAddr("10.96.0.7")); err != nil {
			t.Fatal(err)
		}
		got, err := l.Addresses(DefaultDummy)
		if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("10.96.0.7")}, got, addrs); err != nil || diff != "" {
			t.Errorf("addresses (-want +got):\n%s%v", diff, err)
		}
		if err := l.DeleteDummy(DefaultDummy); err != nil {
			t.Fatal(err)
		}
		if err := l.DeleteDummy(DefaultDummy); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete twice: %v, want ErrNotFound", err)
		}
		if _, err := l.Addresses(DefaultDummy); !errors.Is(err, ErrNotFound) {
			t.Errorf("Addresses after delete: %v, want ErrNotFound", err)
		}
	})
}

// TestEnsureDummyRefreshesTheCachedLink: kube-ipvs0 renamed behind kubevs's back (it keeps
// its index) and created again by EnsureDummy, as every full resync does: the addresses
// added next land on the new kube-ipvs0, not on the renamed link the adapter had cached.
func TestEnsureDummyRefreshesTheCachedLink(t *testing.T) {
	testenv.RequireVM(t)
	testenv.InNetns(t, func() {
		l := newLinks(t)
		if err := l.EnsureDummy(DefaultDummy); err != nil {
			t.Fatal(err)
		}
		a, b := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.96.0.2")
		if err := l.AddAddress(DefaultDummy, a); err != nil {
			t.Fatal(err)
		}
		old, err := netlink.LinkByName(DefaultDummy)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetDown(old); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetName(old, "old-ipvs0"); err != nil {
			t.Fatal(err)
		}
		if err := l.EnsureDummy(DefaultDummy); err != nil {
			t.Fatal(err)
		}
		if err := l.AddAddress(DefaultDummy, b); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string][]netip.Addr{DefaultDummy: {b}, "old-ipvs0": {a}} {
			got, err := l.Addresses(name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, addrs); diff != "" {
				t.Errorf("addresses of %s (-want +got):\n%s", name, diff)
			}
		}
	})
}
