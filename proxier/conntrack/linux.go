//go:build linux

package conntrack

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Linux deletes flows over ctnetlink in the network namespace of the calling thread: one dump
// of each family's table a call needs, then one delete per matching flow (what `conntrack -D`
// does), for TCP, UDP and SCTP, IPv4 and IPv6. A Delete with many filters costs one dump per
// family, not one per filter. It holds no state and is safe for concurrent use.
type Linux struct{}

var _ Interface = Linux{}

// New returns the netlink implementation.
func New() Linux { return Linux{} }

func family(addr netip.Addr) uint8 {
	if addr.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// flowOf is what filters compare of an entry.
func flowOf(e entry) Flow {
	return Flow{Proto: protocolOf(e.orig.proto), OrigSrc: e.orig.src, OrigDst: e.orig.dst, ReplySrc: e.reply.src, ReplyDst: e.reply.dst}
}

// Delete removes every flow that matches one of filters. Per family, it dumps the table
// once and deletes the matches; if the kernel interrupted the dump, the matches found are
// deleted and the dump is tried again (a few times), so a busy table does not hide flows.
// An invalid filter fails the call before anything is deleted.
func (Linux) Delete(filters []Filter) (int, error) {
	byFamily := map[uint8][]Filter{}
	for _, f := range filters {
		if err := f.Validate(); err != nil {
			return 0, fmt.Errorf("delete conntrack flows: %w", err)
		}
		byFamily[family(f.Addr)] = append(byFamily[family(f.Addr)], f)
	}
	deleted := 0
	var errs []error
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		fs := byFamily[fam]
		if len(fs) == 0 {
			continue
		}
		n, err := deleteMatching(fam, fs)
		deleted += n
		if err != nil {
			errs = append(errs, fmt.Errorf("delete conntrack flows %s: %w", describe(fs), err))
		}
	}
	return deleted, errors.Join(errs...)
}

// describe names a few filters for an error message.
func describe(fs []Filter) string {
	var parts []string
	for i, f := range fs {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-i))
			break
		}
		parts = append(parts, f.String())
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// deleteMatching dumps one family's table (again if the dump was interrupted) and deletes
// the entries one of fs matches.
func deleteMatching(fam uint8, fs []Filter) (int, error) {
	deleted := 0
	var errs []error
	for range 3 {
		entries, err := dump(fam)
		if entries == nil && err != nil {
			return deleted, err
		}
		for _, e := range entries {
			fl := flowOf(e)
			if !matchesAny(fs, fl) {
				continue
			}
			if err := remove(fam, e); err != nil {
				errs = append(errs, fmt.Errorf("delete conntrack flow %s -> %s: %w", e.orig.src, e.orig.dst, err))
				continue
			}
			deleted++
		}
		if !errors.Is(err, nl.ErrDumpInterrupted) {
			break
		}
	}
	return deleted, errors.Join(errs...)
}

func matchesAny(fs []Filter, fl Flow) bool {
	for _, f := range fs {
		if f.Matches(fl) {
			return true
		}
	}
	return false
}

// DeleteByOrigDst removes flows whose original destination is addr:port over proto.
func (l Linux) DeleteByOrigDst(proto ipvs.Protocol, addr netip.Addr, port uint16) (int, error) {
	return l.Delete([]Filter{{Match: OrigDst, Proto: proto, Addr: addr, Port: port}})
}

// DeleteByReplySrc removes flows whose reply comes from addr:port over proto (port 0: any).
func (l Linux) DeleteByReplySrc(proto ipvs.Protocol, addr netip.Addr, port uint16) (int, error) {
	return l.Delete([]Filter{{Match: ReplySrc, Proto: proto, Addr: addr, Port: port}})
}

// DeleteByAddr removes every flow with addr as a source or destination in either direction.
func (l Linux) DeleteByAddr(addr netip.Addr) (int, error) {
	return l.Delete([]Filter{{Match: Addr, Addr: addr}})
}
