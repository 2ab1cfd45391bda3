package link

// A periodic resync lists the VIPs on kube-ipvs0: 10,000 addresses at 10,000 Services.
// vishvananda/netlink decodes every address of the namespace into a netlink.Addr of its own
// (net.IPNet, label, cache info), 80,000 allocations and 14 MB for 10,000 (BenchmarkAddresses).
// addrReader asks for one link's addresses over a socket of its own, with one request and
// one receive buffer reused for every dump, and decodes each answer in place.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/proxier/internal/nlreply"
)

// errDumpInterrupted is a dump the kernel flagged inconsistent (NLM_F_DUMP_INTR): the
// addresses changed while it ran.
var errDumpInterrupted = errors.New("address dump interrupted by a concurrent change: results may be incomplete or inconsistent")

const (
	addrRecvBufSize = 64 << 10
	addrRecvTimeout = 30 * time.Second
	ifaFLocal       = unix.IFA_LOCAL
	ifaFAddress     = unix.IFA_ADDRESS
)

// addrReader dumps addresses, and adds them in batches (addbatch_linux.go), over its own
// rtnetlink socket; safe for concurrent use.
type addrReader struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	req []byte
	buf []byte
}

// newAddrReader opens the socket in the calling thread's network namespace. It asks the
// kernel to filter the dump by link (strict checking) where it can; the reply is filtered
// here as well, for kernels that cannot.
func newAddrReader() (*addrReader, error) {
	fd, err := nlreply.Open(unix.NETLINK_ROUTE, "rtnetlink", addrRecvTimeout, func(fd int) {
		_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1) // an optimization only
	})
	if err != nil {
		return nil, err
	}
	return &addrReader{fd: fd, buf: make([]byte, addrRecvBufSize)}, nil
}

func (a *addrReader) close() { _ = unix.Close(a.fd) }

// addresses returns the host addresses (full-length prefix) of the link with index ifindex,
// in the order the kernel lists them.
func (a *addrReader) addresses(ifindex int) ([]netip.Addr, error) {
	return a.dump(ifindex, func(ip netip.Addr, prefix, index int) bool {
		return index == ifindex && prefix == ip.BitLen()
	})
}

// errUnfiltered: the kernel answered a dump of one link with the addresses of others, so it
// does not filter dumps by link.
var errUnfiltered = errors.New("the kernel does not filter address dumps by link")

// linkAddresses returns the addresses (any prefix) of the link with index ifindex, or
// errUnfiltered when the kernel's answer holds another link's.
func (a *addrReader) linkAddresses(ifindex int) ([]netip.Addr, error) {
	unfiltered := false
	out, err := a.dump(ifindex, func(_ netip.Addr, _, index int) bool {
		unfiltered = unfiltered || index != ifindex
		return index == ifindex
	})
	if err == nil && unfiltered {
		err = errUnfiltered
	}
	return out, err
}

// allBut returns every address of every link but the one with index except (any prefix),
// in one dump.
func (a *addrReader) allBut(except int) ([]netip.Addr, error) {
	return a.dump(0, func(_ netip.Addr, _, index int) bool { return index != except })
}

// dump lists the addresses keep accepts, of the link ifindex (0: of every link).
func (a *addrReader) dump(ifindex int, keep func(ip netip.Addr, prefix, index int) bool) ([]netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	a.req = appendGetAddr(a.req[:0], a.seq, ifindex)
	if err := unix.Sendto(a.fd, a.req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send the address dump request: %w", err)
	}
	var out []netip.Addr
	intr := false
	for {
		n, _, err := unix.Recvfrom(a.fd, a.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receive the address dump: %w", err)
		}
		var done, in bool
		out, done, in, err = parseAddrReply(a.buf[:n], a.seq, keep, out)
		intr = intr || in
		if err != nil {
			return nil, err
		}
		if done {
			if intr {
				return out, errDumpInterrupted
			}
			return out, nil
		}
	}
}

// appendGetAddr appends an RTM_GETADDR dump request for the link ifindex (all families).
func appendGetAddr(b []byte, seq uint32, ifindex int) []byte {
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, unix.RTM_GETADDR)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, unix.AF_UNSPEC, 0, 0, 0) // ifaddrmsg: family, prefixlen, flags, scope
	b = binary.NativeEndian.AppendUint32(b, uint32(ifindex))
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// parseAddrReply decodes one received buffer of an address dump with sequence number seq,
// appending to out the addresses keep accepts. done is set by the dump's end, intr when a
// message carries NLM_F_DUMP_INTR.
func parseAddrReply(b []byte, seq uint32, keep func(ip netip.Addr, prefix, index int) bool, out []netip.Addr) (_ []netip.Addr, done, intr bool, _ error) {
	done, intr, err := nlreply.Walk(b, seq, "address dump", func(typ uint16, msg []byte) error {
		if typ == unix.RTM_NEWADDR {
			if a, prefix, index, ok := parseAddr(msg); ok && keep(a, prefix, index) {
				out = append(out, a)
			}
		}
		return nil
	})
	return out, done, intr, err
}

// parseAddr decodes one RTM_NEWADDR message: its address (IPv4 in its 4-byte form), prefix
// length and link index. The address is IFA_LOCAL when present (the local end of a
// point-to-point link), else IFA_ADDRESS. An IPv4-mapped IPv6 address is returned unmapped
// with its prefix of 128, so no IPv4 host address.
func parseAddr(msg []byte) (ip netip.Addr, prefix, index int, ok bool) {
	if len(msg) < unix.SizeofIfAddrmsg {
		return netip.Addr{}, 0, 0, false
	}
	family, prefix := msg[0], int(msg[1])
	index = int(binary.NativeEndian.Uint32(msg[4:]))
	var local, addr []byte
	b := msg[unix.SizeofIfAddrmsg:]
	for len(b) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b))
		if l < unix.SizeofRtAttr || l > len(b) {
			return netip.Addr{}, 0, 0, false
		}
		switch binary.NativeEndian.Uint16(b[2:]) {
		case ifaFLocal:
			local = b[unix.SizeofRtAttr:l]
		case ifaFAddress:
			addr = b[unix.SizeofRtAttr:l]
		}
		b = b[min((l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1), len(b)):]
	}
	if local != nil {
		addr = local
	}
	switch {
	case family == unix.AF_INET && len(addr) == 4:
		ip = netip.AddrFrom4([4]byte(addr))
	case family == unix.AF_INET6 && len(addr) == 16:
		ip = netip.AddrFrom16([16]byte(addr)).Unmap()
	default:
		return netip.Addr{}, 0, 0, false
	}
	return ip, prefix, index, true
}
