package conntrack

import (
	"fmt"
	"net/netip"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Match says which part of a flow a Filter compares.
type Match string

// The matches of a Filter.
const (
	// OrigDst: the original destination is Addr:Port over Proto (a Service VIP).
	OrigDst Match = "orig-dst"
	// ReplySrc: the reply comes from Addr:Port over Proto (an endpoint); Port 0: any port.
	ReplySrc Match = "reply-src"
	// Addr: Addr is a source or destination in either direction, any protocol (a pod).
	Addr Match = "addr"
)

// Filter selects flows to delete. It is comparable, so callers may keep a set of them.
type Filter struct {
	Match Match
	// Proto is unused by Addr.
	Proto ipvs.Protocol
	Addr  netip.Addr
	// Port is unused by Addr.
	Port uint16
	// Via, for ReplySrc, narrows the match to the flows whose original destination is Via:
	// one virtual server's flows to an endpoint, not those of every Service that shares the
	// endpoint. The zero value: any original destination.
	Via netip.AddrPort
}

// String prints "orig-dst UDP 10.96.0.10:53", "reply-src UDP 10.244.0.5:0", "addr 10.244.0.5".
func (f Filter) String() string {
	if f.Match == Addr {
		return string(f.Match) + " " + f.Addr.Unmap().String()
	}
	s := fmt.Sprintf("%s %s %s", f.Match, f.Proto, netip.AddrPortFrom(f.Addr.Unmap(), f.Port))
	if f.Match == ReplySrc && f.Via.IsValid() {
		s += " via " + unmapAP(f.Via).String()
	}
	return s
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Validate checks the match, the protocol (for OrigDst and ReplySrc) and the address.
func (f Filter) Validate() error {
	switch f.Match {
	case OrigDst, ReplySrc:
		if _, err := protoNumber(f.Proto); err != nil {
			return fmt.Errorf("filter %s: %w", f, err)
		}
	case Addr:
	default:
		return fmt.Errorf("filter %s: unknown match %q", f, f.Match)
	}
	if !f.Addr.IsValid() {
		return fmt.Errorf("filter %s: invalid address", f)
	}
	return nil
}

// Flow is one conntrack entry as filters see it: both directions' protocol and addresses.
type Flow struct {
	Proto              ipvs.Protocol
	OrigSrc, OrigDst   netip.AddrPort
	ReplySrc, ReplyDst netip.AddrPort
}

// Matches reports whether the flow fl is one f selects (addresses compared unmapped).
func (f Filter) Matches(fl Flow) bool {
	a := f.Addr.Unmap()
	switch f.Match {
	case OrigDst:
		return fl.Proto == f.Proto && fl.OrigDst == netip.AddrPortFrom(a, f.Port)
	case ReplySrc:
		return fl.Proto == f.Proto && fl.ReplySrc.Addr() == a && (f.Port == 0 || fl.ReplySrc.Port() == f.Port) &&
			(!f.Via.IsValid() || unmapAP(fl.OrigDst) == unmapAP(f.Via))
	case Addr:
		return fl.OrigSrc.Addr() == a || fl.OrigDst.Addr() == a || fl.ReplySrc.Addr() == a || fl.ReplyDst.Addr() == a
	}
	return false
}

// protoNumber maps a Service protocol to its IP protocol number.
func protoNumber(p ipvs.Protocol) (uint8, error) {
	switch p {
	case ipvs.TCP:
		return 6, nil
	case ipvs.UDP:
		return 17, nil
	case ipvs.SCTP:
		return 132, nil
	}
	return 0, fmt.Errorf("unknown protocol %q", p)
}

// protocolOf maps an IP protocol number back to a Service protocol ("" if none).
func protocolOf(n uint8) ipvs.Protocol {
	switch n {
	case 6:
		return ipvs.TCP
	case 17:
		return ipvs.UDP
	case 132:
		return ipvs.SCTP
	}
	return ""
}
