// Package nlreply opens kubevs's own netlink sockets (Open) and reads their replies in
// place: the messages of a dump (Walk), and the acknowledgements of requests sent together
// (ParseAcks, Exchange). The kernel handles every message of one sendmsg in turn and
// acknowledges each (NLM_F_ACK), failed or not, so a batch of adds costs one send and a few
// receives instead of a round trip each.
package nlreply

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Open opens a netlink socket of protocol proto (named name in errors) in the calling
// thread's network namespace, bound, whose receives fail after timeout rather than hang;
// setup, when set, runs on it before the bind.
func Open(proto int, name string, timeout time.Duration, setup func(fd int)) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, fmt.Errorf("open %s socket: %w", name, err)
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("set the receive timeout of the %s socket: %w", name, err)
	}
	if setup != nil {
		setup(fd)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("bind %s socket: %w", name, err)
	}
	return fd, nil
}

// each calls fn with the header fields and payload of each message of one received buffer,
// until fn says stop. what names the reply in errors.
func each(b []byte, what string, fn func(typ, flags uint16, seq uint32, msg []byte) (stop bool, err error)) error {
	for len(b) > 0 {
		if len(b) < unix.SizeofNlMsghdr {
			return errors.New(what + ": truncated reply")
		}
		n := int(binary.NativeEndian.Uint32(b))
		if n < unix.SizeofNlMsghdr || n > len(b) {
			return fmt.Errorf("%s: message length %d of %d bytes", what, n, len(b))
		}
		stop, err := fn(binary.NativeEndian.Uint16(b[4:]), binary.NativeEndian.Uint16(b[6:]), binary.NativeEndian.Uint32(b[8:]), b[unix.SizeofNlMsghdr:n])
		if err != nil || stop {
			return err
		}
		b = b[min((n+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
	}
	return nil
}

// Walk calls fn with the type and payload of each message of one received buffer of the dump
// with sequence number seq; done is set by the dump's end, intr when a message of it carries
// NLM_F_DUMP_INTR (the dumped objects changed meanwhile). Messages of other sequence numbers
// (a late answer to an earlier request) are skipped. what names the dump in errors.
func Walk(b []byte, seq uint32, what string, fn func(typ uint16, msg []byte) error) (done, intr bool, _ error) {
	err := each(b, what, func(typ, flags uint16, s uint32, msg []byte) (bool, error) {
		if s != seq {
			return false, nil
		}
		intr = intr || flags&unix.NLM_F_DUMP_INTR != 0
		switch typ {
		case unix.NLMSG_DONE: // carries the dump's own error, 0 when it ended well
			if len(msg) >= 4 {
				if errno := int32(binary.NativeEndian.Uint32(msg)); errno < 0 {
					return true, unix.Errno(-errno)
				}
			}
			done = true
			return true, nil
		case unix.NLMSG_ERROR:
			if len(msg) < 4 {
				return true, errors.New(what + ": truncated reply")
			}
			if errno := int32(binary.NativeEndian.Uint32(msg)); errno != 0 {
				return true, unix.Errno(-errno)
			}
			done = true
			return true, nil
		case unix.NLMSG_NOOP, unix.NLMSG_OVERRUN:
			return false, nil
		}
		return false, fn(typ, msg)
	})
	return done, intr, err
}

// ParseAcks records in acks the acknowledgements found in b (one received buffer) of the
// requests numbered base to base+len(acks)-1: nil for success, the kernel's errno otherwise.
// It returns how many it found; messages of other sequence numbers are skipped.
func ParseAcks(b []byte, base uint32, acks []error) (int, error) {
	found := 0
	err := each(b, "acknowledgements", func(typ, _ uint16, seq uint32, msg []byte) (bool, error) {
		if typ != unix.NLMSG_ERROR || seq-base >= uint32(len(acks)) {
			return false, nil
		}
		if len(msg) < 4 {
			return true, errors.New("acknowledgement: truncated reply")
		}
		if errno := int32(binary.NativeEndian.Uint32(msg)); errno != 0 {
			acks[seq-base] = unix.Errno(-errno)
		}
		found++
		return false, nil
	})
	return found, err
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
		got, err := ParseAcks(buf[:n], base, acks)
		if err != nil {
			return nil, err
		}
		seen += got
	}
	return acks, nil
}
