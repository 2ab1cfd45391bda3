package ipvs

// A cold sync adds ten real servers per Service: through moby/ipvs, each is a request and
// an answer of its own (two system calls, two fresh 64 KiB buffers). AddRealServers sends
// the adds of one virtual server in one sendmsg, each with its own sequence number and
// acknowledgement, and reads the acknowledgements back together: the kernel handles every
// message of a send in turn and acknowledges each, failed or not.

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/proxier/internal/nlreply"
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
	return nlreply.Exchange(d.fd, d.req, d.buf, base, len(idx), "real server adds")
}
