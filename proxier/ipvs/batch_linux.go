package ipvs

// A cold sync adds ten real servers per Service: through moby/ipvs, each is a request and
// an answer of its own (two system calls, two fresh 64 KiB buffers). AddRealServers sends
// the adds of one virtual server in one sendmsg, each with its own sequence number and
// acknowledgement, and reads the acknowledgements back together: the kernel handles every
// message of a send in turn and acknowledges each, failed or not.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// maxBatch bounds the messages of one send, so that their acknowledgements (a failed one
// carries its request back) stay far below the socket's receive buffer.
const maxBatch = 128

var _ RealServerAdder = (*linuxIPVS)(nil)

// AddRealServers adds each of rss to k as AddRealServer would, up to maxBatch in one
// exchange with the kernel. errs[i] is rss[i]'s outcome: nil, or an error matching
// ErrExist, ErrNotFound or the kernel's errno, naming the real server. A real server the
// kernel answered with a transient error is added again on its own (AddRealServer retries).
func (l *linuxIPVS) AddRealServers(k Key, rss []RealServer) []error {
	errs := make([]error, len(rss))
	var idx []int
	for i, rs := range rss {
		if _, err := toDestination(k, rs); err != nil {
			errs[i] = fmt.Errorf("add real server %s of %s: %w", rs.AddrPort(), k, err)
			continue
		}
		idx = append(idx, i)
	}
	for len(idx) > 0 {
		part := idx[:min(len(idx), maxBatch)]
		idx = idx[len(part):]
		var acks []error
		err := l.do(func() (err error) {
			acks, err = l.dests.addDests(k, rss, part)
			return err
		})
		for j, i := range part {
			e := err
			if e == nil {
				e = acks[j]
			}
			switch {
			case e == nil:
			case transient(e):
				errs[i] = l.AddRealServer(k, rss[i])
			default:
				errs[i] = fmt.Errorf("add real server %s of %s: %w", rss[i].AddrPort(), k, mapErr(e, destCmd))
			}
		}
	}
	return errs
}

// addDests sends IPVS_CMD_NEW_DEST for rss[i], i in idx, in one sendmsg and returns each
// one's acknowledgement (nil: added, else the kernel's errno); err is a failure of the
// exchange itself, after which nothing is known of the adds.
func (d *destReader) addDests(k Key, rss []RealServer, idx []int) (acks []error, err error) {
	base := d.seq + 1
	d.req = d.req[:0]
	for _, i := range idx {
		d.seq++
		if d.req, err = appendDestMsg(d.req, d.family, d.seq, unix.NLM_F_REQUEST|unix.NLM_F_ACK, ipvsCmdNewDest, k, &rss[i]); err != nil {
			return nil, err
		}
	}
	if err := unix.Sendto(d.fd, d.req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send %d real server adds: %w", len(idx), err)
	}
	acks = make([]error, len(idx))
	seen := 0
	for seen < len(idx) {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receive the acknowledgements of %d real server adds (%d received): %w", len(idx), seen, err)
		}
		got, err := parseAcks(d.buf[:n], base, acks)
		if err != nil {
			return nil, err
		}
		seen += got
	}
	return acks, nil
}

// parseAcks records in acks the acknowledgements in b of the requests numbered base to
// base+len(acks)-1 and returns how many it found; messages of other numbers are skipped.
func parseAcks(b []byte, base uint32, acks []error) (int, error) {
	found := 0
	for len(b) > 0 {
		if len(b) < unix.SizeofNlMsghdr {
			return found, errors.New("acknowledgements: " + errTruncatedDestReplyMsg)
		}
		n := int(binary.NativeEndian.Uint32(b))
		if n < unix.SizeofNlMsghdr || n > len(b) {
			return found, fmt.Errorf("acknowledgements: message length %d of %d bytes", n, len(b))
		}
		seq := binary.NativeEndian.Uint32(b[8:])
		if binary.NativeEndian.Uint16(b[4:]) == unix.NLMSG_ERROR && seq-base < uint32(len(acks)) {
			if n < unix.SizeofNlMsghdr+4 {
				return found, errors.New("acknowledgement: " + errTruncatedDestReplyMsg)
			}
			if errno := int32(binary.NativeEndian.Uint32(b[unix.SizeofNlMsghdr:])); errno != 0 {
				acks[seq-base] = unix.Errno(-errno)
			}
			found++
		}
		b = b[min(nlmAlign(n), len(b)):]
	}
	return found, nil
}
