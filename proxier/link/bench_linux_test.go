package link

import (
	"fmt"
	"net"
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

// BenchmarkHostAddresses lists the node's own addresses (for nodePortAddresses and the guard
// rails, at every full sync) in a fresh namespace with 10,000 VIPs on kube-ipvs0 and 100
// other links (a node's pods' veths; bridges stand for both), each way: one dump of every
// address, dropping the VIPs (how HostAddresses worked until 7 Dec 2026), and one dump per
// link but kube-ipvs0, which the kernel filters (how it works now).
//
//	go test -run '^$' -bench HostAddresses -benchmem ./proxier/link/   (root)
func BenchmarkHostAddresses(b *testing.B) {
	testenv.EnterNetns(b)
	const vips, links = 10000, 100
	l, err := New()
	if err != nil {
		b.Fatal(err)
	}
	for i := range links + 1 {
		name := fmt.Sprintf("veth%d", i)
		if i == links {
			name = "kube-ipvs0"
		}
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range vips {
		if err := l.AddAddress("kube-ipvs0", netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.AddAddress("veth0", netip.MustParseAddr("192.168.1.10")); err != nil {
		b.Fatal(err)
	}
	r, err := newAddrReader()
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	dummy, err := net.InterfaceByName("kube-ipvs0")
	if err != nil {
		b.Fatal(err)
	}
	for _, way := range []struct {
		name string
		list func() ([]netip.Addr, error)
	}{
		{"one dump", func() ([]netip.Addr, error) { return r.allBut(dummy.Index) }},
		{"per link", func() ([]netip.Addr, error) { return r.hostAddresses("kube-ipvs0") }},
	} {
		b.Run(way.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if got, err := way.list(); err != nil || len(got) != 3 {
					b.Fatalf("%v, %v; want veth0's address and lo's two", got, err)
				}
			}
		})
	}
}
