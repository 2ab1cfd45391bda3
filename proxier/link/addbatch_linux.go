package link

// A cold sync binds one VIP per Service: through vishvananda/netlink each is a request and an
// answer of its own. AddAddresses sends up to maxAddrBatch in one sendmsg, each acknowledged
// on its own (package nlreply).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/proxier/internal/nlreply"
)

// maxAddrBatch bounds the messages of one send, so that their acknowledgements (a failed one
// carries its request back) stay far below the socket's receive buffer.
const maxAddrBatch = 128

var _ AddressAdder = (*netlinkLinks)(nil)

// AddAddresses binds each of addrs to the link name as AddAddress would, up to maxAddrBatch
// in one exchange with the kernel; errs[i] is addrs[i]'s outcome (ErrExist when bound,
// ErrNotFound when the link is absent). A cached link found gone (ENODEV) is looked up again
// once and those addresses sent again.
func (n *netlinkLinks) AddAddresses(name string, addrs []netip.Addr) []error {
	errs := make([]error, len(addrs))
	var idx []int
	for i, a := range addrs {
		if !a.Unmap().IsValid() {
			errs[i] = fmt.Errorf("add address %s to %s: invalid address", a, name)
			continue
		}
		idx = append(idx, i)
	}
	for len(idx) > 0 {
		part := idx[:min(len(idx), maxAddrBatch)]
		idx = idx[len(part):]
		acks, err := n.addBatch(name, addrs, part)
		if err == nil && slices.ContainsFunc(acks, func(e error) bool { return errors.Is(e, unix.ENODEV) }) {
			n.forget(name) // deleted, perhaps created again: once more on a fresh lookup
			acks, err = n.addBatch(name, addrs, part)
		}
		for j, i := range part {
			e := err
			if e == nil {
				e = acks[j]
			}
			if errors.Is(e, unix.EEXIST) {
				e = fmt.Errorf("%w (%w)", ErrExist, e)
			}
			if e != nil {
				errs[i] = fmt.Errorf("add address %s to %s: %w", addrs[i], name, e)
			}
		}
	}
	return errs
}

// addBatch sends RTM_NEWADDR for addrs[i], i in part, to the link name (cached).
func (n *netlinkLinks) addBatch(name string, addrs []netip.Addr, part []int) ([]error, error) {
	l, err := n.cached(name)
	if err != nil {
		return nil, err
	}
	return n.addrs.addAll(l.Attrs().Index, addrs, part)
}

// addAll sends RTM_NEWADDR for addrs[i], i in part, as host prefixes on link ifindex, in
// one sendmsg, and returns each one's acknowledgement.
func (a *addrReader) addAll(ifindex int, addrs []netip.Addr, part []int) ([]error, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	base := a.seq + 1
	a.req = a.req[:0]
	for _, i := range part {
		a.seq++
		a.req = appendNewAddr(a.req, a.seq, ifindex, addrs[i])
	}
	return nlreply.Exchange(a.fd, a.req, a.buf, base, len(part), "address adds")
}

// appendNewAddr appends an RTM_NEWADDR request binding addr as a host prefix (global scope;
// IPv6 without duplicate address detection) to link ifindex, as AddAddress does.
func appendNewAddr(b []byte, seq uint32, ifindex int, addr netip.Addr) []byte {
	addr = addr.Unmap()
	family, flags := byte(unix.AF_INET), byte(0)
	if addr.Is6() {
		family, flags = unix.AF_INET6, unix.IFA_F_NODAD
	}
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, unix.RTM_NEWADDR)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, family, byte(addr.BitLen()), flags, unix.RT_SCOPE_UNIVERSE)
	b = binary.NativeEndian.AppendUint32(b, uint32(ifindex))
	for _, typ := range []uint16{unix.IFA_LOCAL, unix.IFA_ADDRESS} {
		raw := addr.AsSlice()
		b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofRtAttr+len(raw)))
		b = binary.NativeEndian.AppendUint16(b, typ)
		b = append(b, raw...) // 4 or 16 bytes: aligned
	}
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}
