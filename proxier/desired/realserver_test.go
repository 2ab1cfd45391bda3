package desired

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"unsafe"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// TestRealServer: a real server keeps its address (IPv4, IPv6, mapped IPv4 unmapped),
// port and weight, orders as netip.AddrPort.Compare, and takes 24 bytes with no pointer
// (so the collector never scans a list of them).
func TestRealServer(t *testing.T) {
	addrs := []string{"10.0.0.1", "10.0.0.2", "9.255.255.255", "::ffff:10.0.0.3", "fd00::1", "fd00::1:0", "::1", "0.0.0.0"}
	var aps []netip.AddrPort
	for _, a := range addrs {
		for _, p := range []uint16{0, 80, 65535} {
			aps = append(aps, netip.AddrPortFrom(netip.MustParseAddr(a), p))
		}
	}
	for _, ap := range aps {
		r := NewRealServer(ap, 7)
		want := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if r.AddrPort() != want || r.Addr() != want.Addr() || r.Port() != ap.Port() || r.Weight() != 7 {
			t.Errorf("NewRealServer(%s, 7) = %s", ap, r)
		}
		if got := r.IPVS(); got != (ipvs.RealServer{Address: want.Addr(), Port: ap.Port(), Weight: 7}) {
			t.Errorf("%s.IPVS() = %+v", r, got)
		}
		if got := RealServerOf(ipvs.RealServer{Address: ap.Addr(), Port: ap.Port(), Weight: 3, ActiveConns: 9}); got != r.WithWeight(3) {
			t.Errorf("RealServerOf = %s, want %s", got, r.WithWeight(3))
		}
		if r.String() != r.IPVS().String() {
			t.Errorf("String() = %q, ipvs's %q", r, r.IPVS())
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		a, b := aps[rng.IntN(len(aps))], aps[rng.IntN(len(aps))]
		ua, ub := netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), netip.AddrPortFrom(b.Addr().Unmap(), b.Port())
		if got, want := CompareRealServers(NewRealServer(a, 1), NewRealServer(b, 0)), ua.Compare(ub); got != want {
			t.Fatalf("CompareRealServers(%s, %s) = %d, netip says %d", a, b, got, want)
		}
	}
	if size := unsafe.Sizeof(RealServer{}); size != 24 {
		t.Errorf("a real server takes %d bytes, want 24", size)
	}
	for f := range reflect.TypeFor[RealServer]().Fields() {
		if k := f.Type.Kind(); k == reflect.Pointer || k == reflect.String || k == reflect.Slice || k == reflect.Map || k == reflect.Struct || k == reflect.Interface {
			t.Errorf("field %s is a %s: it may hold a pointer", f.Name, k)
		}
	}
}
