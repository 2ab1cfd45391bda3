//go:build linux

package conntrack

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Linux deletes flows over ctnetlink in the network namespace of the calling thread: one dump
// of the family's table, then one delete per matching flow (what `conntrack -D` does), for
// TCP, UDP and SCTP, IPv4 and IPv6. It
// holds no state and is safe for concurrent use.
type Linux struct{}

var _ Interface = Linux{}

// New returns the netlink implementation.
func New() Linux { return Linux{} }

// protoNumber maps a Service protocol to its IP protocol number.
func protoNumber(p ipvs.Protocol) (uint8, error) {
	switch p {
	case ipvs.TCP:
		return unix.IPPROTO_TCP, nil
	case ipvs.UDP:
		return unix.IPPROTO_UDP, nil
	case ipvs.SCTP:
		return unix.IPPROTO_SCTP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q", p)
}

// match selects entries to delete.
type match func(e entry) bool

func family(addr netip.Addr) uint8 {
	if addr.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// deleteFlows dumps the family's table and deletes the matching entries. If the kernel
// interrupted the dump, the matches found are deleted and the dump is tried again (a few
// times), so a busy table does not hide flows.
func deleteFlows(what string, addr netip.Addr, m match) (int, error) {
	if !addr.IsValid() {
		return 0, fmt.Errorf("delete conntrack flows %s: invalid address", what)
	}
	deleted := 0
	var errs []error
	for range 3 {
		entries, err := dump(family(addr))
		if entries == nil && err != nil {
			return deleted, fmt.Errorf("delete conntrack flows %s: %w", what, err)
		}
		for _, e := range entries {
			if !m(e) {
				continue
			}
			if err := remove(family(addr), e); err != nil {
				errs = append(errs, fmt.Errorf("delete conntrack flow %s -> %s: %w", e.orig.src, e.orig.dst, err))
				continue
			}
			deleted++
		}
		if !errors.Is(err, nl.ErrDumpInterrupted) {
			break
		}
	}
	if len(errs) > 0 {
		return deleted, fmt.Errorf("delete conntrack flows %s: %w", what, errors.Join(errs...))
	}
	return deleted, nil
}

// DeleteByOrigDst removes flows whose original destination is addr:port over proto.
func (Linux) DeleteByOrigDst(proto ipvs.Protocol, addr netip.Addr, port uint16) (int, error) {
	p, err := protoNumber(proto)
	if err != nil {
		return 0, err
	}
	addr = addr.Unmap()
	what := fmt.Sprintf("to %s %s", proto, netip.AddrPortFrom(addr, port))
	return deleteFlows(what, addr, func(e entry) bool {
		return e.orig.proto == p && e.orig.dst == netip.AddrPortFrom(addr, port)
	})
}

// DeleteByReplySrc removes flows whose reply comes from addr:port over proto (port 0: any).
func (Linux) DeleteByReplySrc(proto ipvs.Protocol, addr netip.Addr, port uint16) (int, error) {
	p, err := protoNumber(proto)
	if err != nil {
		return 0, err
	}
	addr = addr.Unmap()
	what := fmt.Sprintf("answered by %s %s", proto, netip.AddrPortFrom(addr, port))
	return deleteFlows(what, addr, func(e entry) bool {
		return e.reply.proto == p && e.reply.src.Addr() == addr && (port == 0 || e.reply.src.Port() == port)
	})
}

// DeleteByAddr removes every flow with addr as a source or destination in either direction.
func (Linux) DeleteByAddr(addr netip.Addr) (int, error) {
	addr = addr.Unmap()
	return deleteFlows("of "+addr.String(), addr, func(e entry) bool {
		return e.orig.src.Addr() == addr || e.orig.dst.Addr() == addr ||
			e.reply.src.Addr() == addr || e.reply.dst.Addr() == addr
	})
}
