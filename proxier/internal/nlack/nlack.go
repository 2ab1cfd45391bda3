// Package nlack reads the acknowledgements of netlink requests sent together: the kernel
// handles every message of one sendmsg in turn and acknowledges each (NLM_F_ACK), failed or
// not, so a batch of adds costs one send and a few receives instead of a round trip each.
package nlack

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Parse records in acks the acknowledgements found in b (one received buffer) of the requests
// numbered base to base+len(acks)-1: nil for success, the kernel's errno otherwise. It
// returns how many it found; messages of other sequence numbers are skipped.
func Parse(b []byte, base uint32, acks []error) (int, error) {
	found := 0
	for len(b) > 0 {
		if len(b) < unix.SizeofNlMsghdr {
			return found, errors.New("acknowledgements: truncated reply")
		}
		n := int(binary.NativeEndian.Uint32(b))
		if n < unix.SizeofNlMsghdr || n > len(b) {
			return found, fmt.Errorf("acknowledgements: message length %d of %d bytes", n, len(b))
		}
		seq := binary.NativeEndian.Uint32(b[8:])
		if binary.NativeEndian.Uint16(b[4:]) == unix.NLMSG_ERROR && seq-base < uint32(len(acks)) {
			if n < unix.SizeofNlMsghdr+4 {
				return found, errors.New("acknowledgement: truncated reply")
			}
			if errno := int32(binary.NativeEndian.Uint32(b[unix.SizeofNlMsghdr:])); errno != 0 {
				acks[seq-base] = unix.Errno(-errno)
			}
			found++
		}
		b = b[min((n+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
	}
	return found, nil
}

// Exchange sends req (count requests numbered base onwards, each asking for an
// acknowledgement) on the netlink socket fd and reads their acknowledgements into a slice,
// using buf to receive. err is a failure of the exchange itself, after which nothing is
// known of the requests. what names the requests in errors.
func Exchange(fd int, req, buf []byte, base uint32, count int, what string) (acks []error, err error) {
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send %d %s: %w", count, what, err)
	}
	acks = make([]error, count)
	for seen := 0; seen < count; {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receive the acknowledgements of %d %s (%d received): %w", count, what, seen, err)
		}
		got, err := Parse(buf[:n], base, acks)
		if err != nil {
			return nil, err
		}
		seen += got
	}
	return acks, nil
}
