package ipvs

import (
	"errors"
	"fmt"
	"sync"
	"time"

	libipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linuxIPVS programs the kernel's IPVS table over generic netlink, in the network namespace
// the calling thread was in when New ran.
type linuxIPVS struct {
	mu    sync.Mutex // one request on the sockets at a time
	h     *libipvs.Handle
	dests *destReader // lists real servers (dump_linux.go)
	// table reads all real servers at once (table_linux.go), under its own lock: a read of
	// a large table must not hold up the writes on the sockets.
	tableMu sync.Mutex
	table   *tableFile
	sleep   func(time.Duration)
	closed  bool
}

var _ Interface = (*linuxIPVS)(nil)

// New opens a generic netlink socket to IPVS in the calling thread's network namespace (a
// caller that wants another namespace locks its goroutine there first). It loads ip_vs if
// modprobe can, and fails if the kernel still has no IPVS. The result is safe for concurrent
// use and also implements io.Closer, which releases the socket.
func New() (Interface, error) {
	h, err := libipvs.New("")
	if err != nil {
		return nil, fmt.Errorf("open IPVS netlink socket: %w", err)
	}
	// moby/ipvs only logs when the family is missing; ask for it ourselves so that a kernel
	// without IPVS is an error here rather than odd replies later.
	fam, err := netlink.GenlFamilyGet("IPVS")
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("find the IPVS generic netlink family (is ip_vs in the kernel?): %w", err)
	}
	dests, err := newDestReader(fam.ID)
	if err != nil {
		h.Close()
		return nil, err
	}
	table, err := openTable()
	if err != nil {
		h.Close()
		dests.close()
		return nil, err
	}
	return &linuxIPVS{h: h, dests: dests, table: table, sleep: time.Sleep}, nil
}

// Close releases the netlink socket; the value must not be used afterwards.
func (l *linuxIPVS) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.h.Close()
		l.dests.close()
		l.tableMu.Lock()
		l.table.close()
		l.table = nil
		l.tableMu.Unlock()
		l.closed = true
	}
	return nil
}

// Transient errors are retried this many times in all, waiting retryBase, then twice as long
// each time (1+2+4+8 ms at most: a sync must not stall on a busy kernel).
const (
	retryAttempts = 5
	retryBase     = time.Millisecond
)

// transient reports errors the kernel or the socket returns when busy rather than wrong.
func transient(err error) bool {
	return errors.Is(err, unix.EINTR) || errors.Is(err, unix.EBUSY) ||
		errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN)
}

// do runs fn under the lock, retrying transient failures with a short bounded backoff. A
// retried add that then reports EEXIST is reported as such: the caller's next read tells.
func (l *linuxIPVS) do(fn func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("IPVS handle is closed")
	}
	return retry(fn, l.sleep)
}

func retry(fn func() error, sleep func(time.Duration)) error {
	wait := retryBase
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(); err == nil || !transient(err) || attempt == retryAttempts {
			return err
		}
		sleep(wait)
		wait *= 2
	}
}

// VirtualServers lists every virtual server with an address, protocol and port; firewall
// mark services, which kubevs never creates, are left out.
func (l *linuxIPVS) VirtualServers() ([]VirtualServer, error) {
	var out []VirtualServer
	err := l.do(func() error {
		out = out[:0]
		return l.dests.services(func(vs VirtualServer, _ Stats) { out = append(out, vs) })
	})
	if err != nil {
		return nil, fmt.Errorf("list virtual servers: %w", err)
	}
	return out, nil
}

var _ StatsReader = (*linuxIPVS)(nil)

// VirtualServerStats reads the counters of every virtual server in one dump.
func (l *linuxIPVS) VirtualServerStats() (map[Key]Stats, error) {
	var out map[Key]Stats
	err := l.do(func() error {
		out = map[Key]Stats{}
		return l.dests.services(func(vs VirtualServer, st Stats) { out[vs.Key] = st })
	})
	if err != nil {
		return nil, fmt.Errorf("read virtual server counters: %w", err)
	}
	return out, nil
}

// AddVirtualServer adds vs; ErrExist if the key is taken. An unknown scheduler is an error
// that matches unix.ENOENT but not ErrNotFound.
func (l *linuxIPVS) AddVirtualServer(vs VirtualServer) error {
	s, err := toService(vs)
	if err == nil {
		err = mapErr(l.do(func() error { return l.h.NewService(s) }), serviceCmd)
	}
	if err != nil {
		return fmt.Errorf("add virtual server %s: %w", vs, err)
	}
	return nil
}

// UpdateVirtualServer sets scheduler and persistence; ErrNotFound if absent.
func (l *linuxIPVS) UpdateVirtualServer(vs VirtualServer) error {
	s, err := toService(vs)
	if err == nil {
		err = mapErr(l.do(func() error { return l.h.UpdateService(s) }), serviceCmd)
	}
	if err != nil {
		return fmt.Errorf("update virtual server %s: %w", vs, err)
	}
	return nil
}

// DeleteVirtualServer removes k and its real servers; ErrNotFound if absent.
func (l *linuxIPVS) DeleteVirtualServer(k Key) error {
	s, err := keyService(k)
	if err == nil {
		err = mapErr(l.do(func() error { return l.h.DelService(s) }), serviceCmd)
	}
	if err != nil {
		return fmt.Errorf("delete virtual server %s: %w", k, err)
	}
	return nil
}

// RealServers lists k's real servers with their connection counters; ErrNotFound if k is
// absent. The kernel answers a dump for an absent service with nothing, so an empty answer
// is checked with a lookup of the service.
func (l *linuxIPVS) RealServers(k Key) ([]RealServer, error) {
	s, err := keyService(k)
	if err != nil {
		return nil, fmt.Errorf("list real servers of %s: %w", k, err)
	}
	var out []RealServer
	err = l.do(func() (err error) {
		out, err = l.dests.realServers(k)
		if err == nil && len(out) == 0 {
			_, err = l.h.GetService(s)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list real servers of %s: %w", k, mapErr(err, serviceCmd))
	}
	return out, nil
}

// AddRealServer adds rs to k, masquerading; ErrExist if present, ErrNotFound if k is absent.
func (l *linuxIPVS) AddRealServer(k Key, rs RealServer) error {
	return l.destCmd("add", k, rs, (*libipvs.Handle).NewDestination)
}

// UpdateRealServer sets rs's weight; ErrNotFound if rs or k is absent.
func (l *linuxIPVS) UpdateRealServer(k Key, rs RealServer) error {
	return l.destCmd("update", k, rs, (*libipvs.Handle).UpdateDestination)
}

// DeleteRealServer removes rs from k; ErrNotFound if rs or k is absent.
func (l *linuxIPVS) DeleteRealServer(k Key, rs RealServer) error {
	return l.destCmd("delete", k, rs, (*libipvs.Handle).DelDestination)
}

func (l *linuxIPVS) destCmd(verb string, k Key, rs RealServer, cmd func(*libipvs.Handle, *libipvs.Service, *libipvs.Destination) error) error {
	s, err := keyService(k)
	if err != nil {
		return fmt.Errorf("%s real server %s of %s: %w", verb, rs.AddrPort(), k, err)
	}
	d, err := toDestination(k, rs)
	if err == nil {
		err = mapErr(l.do(func() error { return cmd(l.h, s, d) }), destCmd)
	}
	if err != nil {
		return fmt.Errorf("%s real server %s of %s: %w", verb, rs.AddrPort(), k, err)
	}
	return nil
}

// SetTimeouts sets the connection timeouts; the kernel leaves a zero one unchanged.
func (l *linuxIPVS) SetTimeouts(t Timeouts) error {
	if t.IsZero() {
		return nil
	}
	err := l.do(func() error {
		return l.h.SetConfig(&libipvs.Config{TimeoutTCP: t.TCP, TimeoutTCPFin: t.TCPFin, TimeoutUDP: t.UDP})
	})
	if err != nil {
		return fmt.Errorf("set IPVS timeouts (%s): %w", t, err)
	}
	return nil
}
