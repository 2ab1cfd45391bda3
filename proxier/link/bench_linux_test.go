package link

import (
	"net/netip"
	"testing"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/vishvananda/netlink"
)

// BenchmarkAddresses lists the 10,000 addresses of one link, as a periodic resync lists the
// VIPs on kube-ipvs0, in a fresh namespace (a bridge stands for the dummy, which the host
// kernel lacks: the listing does not depend on the link's kind).
//
//	go test -run '^$' -bench Addresses -benchmem ./proxier/link/   (root)
func BenchmarkAddresses(b *testing.B) {
	testenv.EnterNetns(b)
	const n = 10000
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "kube-ipvs0"}}
	if err := netlink.LinkAdd(br); err != nil {
		b.Fatal(err)
	}
	l, err := New()
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := l.AddAddress("kube-ipvs0", netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		got, err := l.Addresses("kube-ipvs0")
		if err != nil || len(got) != n {
			b.Fatalf("%d addresses, %v", len(got), err)
		}
	}
}
