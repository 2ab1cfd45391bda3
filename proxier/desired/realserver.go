package desired

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// RealServer is one real server of a virtual server: its address, port and weight. It
// takes 24 bytes and holds no pointer, where ipvs.RealServer takes 40 (with the kernel's
// connection counters) and a pointer the garbage collector follows: real servers are most
// of the computed state of many Services (500,000 at 50,000 Services of 10). The
// reconciler's picture of the kernel keeps the same type, so a virtual server in sync
// shares the computed list instead of holding a copy.
type RealServer struct {
	addr   [16]byte // IPv4 in its mapped form
	port   uint16
	v4     bool
	weight int32
}

// NewRealServer returns the real server ap (unmapped; zones are dropped) with weight.
func NewRealServer(ap netip.AddrPort, weight int32) RealServer {
	a := ap.Addr().Unmap()
	return RealServer{addr: a.As16(), port: ap.Port(), v4: a.Is4(), weight: weight}
}

// RealServerOf is the RealServer of r (its counters dropped).
func RealServerOf(r ipvs.RealServer) RealServer {
	return NewRealServer(r.AddrPort(), r.Weight)
}

// Addr is the real server's address.
func (r RealServer) Addr() netip.Addr {
	a := netip.AddrFrom16(r.addr)
	if r.v4 {
		return a.Unmap()
	}
	return a
}

// Port is the real server's port.
func (r RealServer) Port() uint16 { return r.port }

// AddrPort is the real server's identity within its virtual server.
func (r RealServer) AddrPort() netip.AddrPort { return netip.AddrPortFrom(r.Addr(), r.port) }

// Weight is the real server's weight.
func (r RealServer) Weight() int32 { return r.weight }

// WithWeight is r with weight w.
func (r RealServer) WithWeight(w int32) RealServer {
	r.weight = w
	return r
}

// IPVS is r as the ipvs package writes it.
func (r RealServer) IPVS() ipvs.RealServer {
	return ipvs.RealServer{Address: r.Addr(), Port: r.port, Weight: r.weight}
}

// Equal reports whether r and o are the same real server with the same weight (go-cmp
// uses it, as the fields are private).
func (r RealServer) Equal(o RealServer) bool { return r == o }

func (r RealServer) String() string { return fmt.Sprintf("%s weight %d", r.AddrPort(), r.weight) }

// CompareRealServers orders real servers as netip.AddrPort.Compare orders their
// addresses and ports (IPv4 first), whatever their weights.
func CompareRealServers(a, b RealServer) int {
	if a.v4 != b.v4 {
		if a.v4 {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(a.addr[:], b.addr[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.port, b.port)
}
