package reconcile

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// TestRSListMatchesAMap: random sets, batched adds, deletes and lookups on the sorted list
// give what a map gives, and the list stays sorted without duplicates.
func TestRSListMatchesAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	addrs := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::1"), netip.MustParseAddr("9.0.0.1")}
	ap := func() netip.AddrPort { return netip.AddrPortFrom(addrs[rng.IntN(len(addrs))], uint16(80+rng.IntN(3))) }
	var l rsList
	m := map[netip.AddrPort]int32{}
	for range 5000 {
		switch a := ap(); rng.IntN(4) {
		case 0:
			w := rng.Int32N(3)
			l.set(a, w)
			m[a] = w
		case 3: // a batch, in any order, one address and port maybe twice: the last wins
			var batch []ipvs.RealServer
			for range rng.IntN(4) {
				b, w := ap(), rng.Int32N(3)
				batch = append(batch, ipvs.RealServer{Address: b.Addr(), Port: b.Port(), Weight: w})
				m[b] = w
			}
			l.addAll(batch)
		case 1:
			l.del(a)
			delete(m, a)
		default:
			w, ok := l.get(a)
			if mw, mok := m[a]; w != mw || ok != mok {
				t.Fatalf("get(%s) = %d, %v; the map has %d, %v", a, w, ok, mw, mok)
			}
		}
		if !slices.IsSortedFunc(l, desired.CompareRealServers) || len(l) != len(m) {
			t.Fatalf("list %v unsorted or not the map's %v", l, m)
		}
	}
	got := map[netip.AddrPort]int32{}
	var order []netip.AddrPort
	for _, e := range l {
		got[e.AddrPort()] = e.Weight()
		order = append(order, e.AddrPort())
	}
	if !maps.Equal(got, m) {
		t.Errorf("list = %v, want %v", got, m)
	}
	if !slices.IsSortedFunc(order, netip.AddrPort.Compare) {
		t.Errorf("the list is not in netip.AddrPort order: %v", order)
	}
}

// TestRSListOf: a read of real servers, in any order and with a repeat (the last wins),
// becomes the sorted list, which is the same as the read.
func TestRSListOf(t *testing.T) {
	rs := func(a string, port uint16, w int32) ipvs.RealServer {
		return ipvs.RealServer{Address: netip.MustParseAddr(a), Port: port, Weight: w}
	}
	read := []ipvs.RealServer{rs("10.0.0.2", 80, 1), rs("10.0.0.1", 81, 0), rs("10.0.0.1", 80, 1), rs("10.0.0.2", 80, 5)}
	l := rsListOf(read)
	want := rsList{
		desired.NewRealServer(netip.MustParseAddrPort("10.0.0.1:80"), 1),
		desired.NewRealServer(netip.MustParseAddrPort("10.0.0.1:81"), 0),
		desired.NewRealServer(netip.MustParseAddrPort("10.0.0.2:80"), 5),
	}
	if !slices.Equal(l, want) {
		t.Errorf("rsListOf = %v, want %v", l, want)
	}
	if !l.same(read[1:]) || l.same(read[:3]) || l.same(read[1:3]) {
		t.Error("same is wrong")
	}
}
