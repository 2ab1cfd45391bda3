// Package ipvs owns kubevs's view of the kernel's IP Virtual Server table: virtual servers
// (always NAT/masquerading forwarding) and their real servers, in domain types.
//
// The Linux implementation talks generic netlink (github.com/moby/ipvs); ipvstest holds an
// in-memory fake with the kernel's semantics (ErrExist on duplicate adds, ErrNotFound on
// updates and deletes of what is not there).
package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol is a transport protocol IPVS balances.
type Protocol string

// The protocols kubevs programs.
const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// Key identifies a virtual server: the kernel allows one per address, protocol and port.
type Key struct {
	Address  netip.Addr
	Protocol Protocol
	Port     uint16
}

func (k Key) String() string {
	return fmt.Sprintf("%s:%s", k.Protocol, netip.AddrPortFrom(k.Address, k.Port))
}

// VirtualServer is one IPVS service.
type VirtualServer struct {
	Key
	// Scheduler is the kernel scheduler name (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh...).
	Scheduler string
	// Persistent enables persistence (ClientIP session affinity) for Timeout seconds.
	Persistent bool
	Timeout    uint32
}

func (v VirtualServer) String() string {
	s := v.Key.String() + " " + v.Scheduler
	if v.Persistent {
		s += fmt.Sprintf(" persistent %ds", v.Timeout)
	}
	return s
}

// RealServer is one destination of a virtual server, always forwarded by masquerading (NAT).
// Its fields have the kernel's sizes (40 bytes where ints took 56: the desired state holds
// one per endpoint of every Service port).
type RealServer struct {
	Address netip.Addr
	Port    uint16
	Weight  int32
	// ActiveConns and InactiveConns are read from the kernel; they are ignored on writes.
	ActiveConns   uint32
	InactiveConns uint32
}

// AddrPort is the real server's identity within its virtual server.
func (r RealServer) AddrPort() netip.AddrPort { return netip.AddrPortFrom(r.Address, r.Port) }

func (r RealServer) String() string {
	return fmt.Sprintf("%s weight %d", r.AddrPort(), r.Weight)
}

// Interface is the IPVS table. Implementations are safe for use by one goroutine at a time.
type Interface interface {
	// VirtualServers lists every virtual server in the kernel, kubevs's or not.
	VirtualServers() ([]VirtualServer, error)
	// AddVirtualServer fails with an error matching ErrExist if the key is taken.
	AddVirtualServer(VirtualServer) error
	// UpdateVirtualServer changes scheduler and persistence; ErrNotFound if absent.
	UpdateVirtualServer(VirtualServer) error
	// DeleteVirtualServer removes the virtual server and its real servers; ErrNotFound if absent.
	DeleteVirtualServer(Key) error
	// RealServers lists the real servers of one virtual server; ErrNotFound if it is absent.
	RealServers(Key) ([]RealServer, error)
	// AddRealServer fails with ErrExist if the address and port are already a real server.
	AddRealServer(Key, RealServer) error
	// UpdateRealServer changes the weight; ErrNotFound if absent.
	UpdateRealServer(Key, RealServer) error
	// DeleteRealServer removes one real server; ErrNotFound if absent.
	DeleteRealServer(Key, RealServer) error
	// SetTimeouts sets the kernel's connection timeouts (ipvsadm --set); a zero one is
	// left as it is.
	SetTimeouts(Timeouts) error
}

// Timeouts are IPVS's connection timeouts (TCP established, TCP after FIN, UDP). Zero
// leaves a timeout unchanged.
type Timeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// IsZero reports whether no timeout is set.
func (t Timeouts) IsZero() bool { return t == Timeouts{} }

func (t Timeouts) String() string {
	return fmt.Sprintf("tcp %s tcpfin %s udp %s", t.TCP, t.TCPFin, t.UDP)
}

// Stats are a virtual server's counters since it was created: connections scheduled,
// packets and bytes in (client to real server) and out, all 64 bits as the kernel keeps
// them (its 64-bit stats attribute; only kernels without it give 32-bit connection and
// packet counts, which wrap at 2^32).
type Stats struct {
	Connections, PacketsIn, PacketsOut, BytesIn, BytesOut uint64
}

// StatsReader reads the counters of every virtual server (firewall-mark services left
// out). The Linux implementation and the fake implement it beside Interface, and are safe
// for concurrent use.
type StatsReader interface {
	VirtualServerStats() (map[Key]Stats, error)
}

// RealServerAdder adds several real servers of one virtual server at once. The Linux
// implementation and the fake implement it beside Interface.
type RealServerAdder interface {
	// AddRealServers adds each of rss to k as AddRealServer would; errs[i] is rss[i]'s
	// outcome (nil, or an error matching ErrExist, ErrNotFound...).
	AddRealServers(k Key, rss []RealServer) (errs []error)
}

// Sentinel errors; implementations wrap them so errors.Is works.
var (
	ErrExist    = errors.New("already exists")
	ErrNotFound = errors.New("not found")
)
