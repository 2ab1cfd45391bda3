package link

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/vishvananda/netlink"
)

// TestAddAddressesInOneSend: a batch with an address already bound (ErrExist, the others
// still added), both families and more than maxAddrBatch addresses; the same on a link
// deleted and created again behind the adapter's cache (ENODEV, sent again); and on an absent
// link, ErrNotFound for each. A bridge stands for the dummy.
func TestAddAddressesInOneSend(t *testing.T) {
	testenv.EnterNetns(t)
	old := addBridge(t, "kube-ipvs0")
	l := newLinks(t).(*netlinkLinks)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.AddAddress("kube-ipvs0", netip.MustParseAddr("10.96.0.2")))
	batch := []netip.Addr{netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.96.0.2"), netip.MustParseAddr("fd00::1"), {}}
	errs := l.AddAddresses("kube-ipvs0", batch)
	if errs[0] != nil || !errors.Is(errs[1], ErrExist) || errs[2] != nil || errs[3] == nil {
		t.Fatalf("errs = %v; want nil, ErrExist, nil, an invalid address", errs)
	}
	got, err := l.Addresses("kube-ipvs0")
	must(err)
	if d := cmp.Diff(batch[:3], got, addrs); d != "" {
		t.Errorf("addresses (-want +got):\n%s", d)
	}

	must(netlink.LinkDel(old))
	addBridge(t, "kube-ipvs0")
	many := make([]netip.Addr, 2*maxAddrBatch+3)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 97, byte(i >> 8), byte(i)})
	}
	for i, err := range l.AddAddresses("kube-ipvs0", many) {
		if err != nil {
			t.Fatalf("add %d of %d to the link created again: %v", i, len(many), err)
		}
	}
	got, err = l.Addresses("kube-ipvs0")
	must(err)
	if len(got) != len(many) {
		t.Errorf("%d addresses on the new link, want %d", len(got), len(many))
	}
	for _, err := range l.AddAddresses("absent0", batch[:2]) {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("add to an absent link: %v, want ErrNotFound", err)
		}
	}
}

// BenchmarkAddAddresses binds 1,000 VIPs (a cold sync's) batched and one request each, in a
// fresh namespace on the host (a bridge stands for the dummy).
//
//	go test -run '^$' -bench AddAddresses ./proxier/link/   (root)
func BenchmarkAddAddresses(b *testing.B) {
	for _, batched := range []bool{true, false} {
		b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
			testenv.EnterNetns(b)
			l, err := New()
			if err != nil {
				b.Fatal(err)
			}
			addrs := make([]netip.Addr, 1000)
			for i := range addrs {
				addrs[i] = netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
			}
			for range b.N {
				b.StopTimer()
				_ = netlink.LinkDel(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "kube-ipvs0"}})
				if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "kube-ipvs0"}}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if batched {
					for _, err := range l.(AddressAdder).AddAddresses("kube-ipvs0", addrs) {
						if err != nil {
							b.Fatal(err)
						}
					}
					continue
				}
				for _, a := range addrs {
					if err := l.AddAddress("kube-ipvs0", a); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
