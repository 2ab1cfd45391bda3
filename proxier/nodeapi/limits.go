package nodeapi

// What one caller can make the server hold. Only root reaches the socket, but root is also
// every CNI plugin run, and a plugin (or anything else on the node) in a loop must not take
// the proxier down with it or lock the other callers out. So:
//
//   - connections: at most MaxConnsPerCaller open at once from one process (its pid, from
//     SO_PEERCRED at accept), at most MaxConns in all. A connection over the per-process cap
//     is closed at once; over the total it waits in the kernel's accept queue. A process
//     that holds its connections open with half requests (slowloris) thus holds at most
//     MaxConnsPerCaller of them, each cut off by the read timeouts, while a plugin run (a
//     process of its own, one connection per request) is still accepted at once.
//   - bodies: a registration or an attachment is a few hundred bytes, a GC request lists every
//     attachment (at most MaxRegistrations): maxSmallBody and maxBody bound what is read.
//   - registrations: at most MaxRegistrations (store.go).
//
// Every refusal is reported to the refusal counter by reason (the metric's label values).

import (
	"net"
	"sync"
)

// Connection caps (see above): MaxConns is far above the CNI runs a node makes at once, and
// with the server's buffers (a few KiB per connection) bounds their memory to a few MiB.
const (
	MaxConns          = 1024
	MaxConnsPerCaller = 64
)

// maxSmallBody bounds the body of a register or unregister request.
const maxSmallBody = 64 << 10

// The reasons a request or connection is refused: values of the proxier's
// kubevs_node_api_refused_total{reason} label; never change them.
const (
	RefusedNotRoot      = "not_root"
	RefusedBadRequest   = "bad_request"    // undecodable or unknown fields
	RefusedBodyTooLarge = "body_too_large" // over maxSmallBody or maxBody
	RefusedInvalid      = "invalid"        // names or IPs that fail Validate
	RefusedIPNotAllowed = "ip_not_allowed" // outside the node's podCIDRs (the IP validator)
	RefusedTooMany      = "too_many_registrations"
	RefusedTooManyConns = "too_many_connections" // over MaxConnsPerCaller
)

// SetRefusalCounter makes the server call fn with the reason of every refused request and
// connection (the Refused* constants). Call it before Serve; fn must be safe for concurrent
// use and cheap.
func (s *Server) SetRefusalCounter(fn func(reason string)) { s.refusedFn = fn }

func (s *Server) refused(reason string) {
	if s.refusedFn != nil {
		s.refusedFn(reason)
	}
}

// callerLimitListener applies the connection caps to a unix listener. Its connections
// carry their peer's credentials, read once at accept.
type callerLimitListener struct {
	*net.UnixListener
	perCaller int
	slots     chan struct{} // one per open connection, MaxConns in all
	refused   func(string)

	mu   sync.Mutex
	open map[int]int // by pid
}

func newCallerLimitListener(ln *net.UnixListener, total, perCaller int, refused func(string)) *callerLimitListener {
	return &callerLimitListener{UnixListener: ln, perCaller: perCaller, slots: make(chan struct{}, total), refused: refused, open: map[int]int{}}
}

// Accept waits for a free slot, then returns the next connection whose process holds fewer
// than perCaller; others are closed and counted.
func (l *callerLimitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	for {
		c, err := l.UnixListener.AcceptUnix()
		if err != nil {
			<-l.slots
			return nil, err
		}
		p := peerOf(c)
		l.mu.Lock()
		if l.open[p.pid] >= l.perCaller {
			l.mu.Unlock()
			_ = c.Close()
			l.refused(RefusedTooManyConns)
			continue
		}
		l.open[p.pid]++
		l.mu.Unlock()
		return &callerConn{UnixConn: c, peer: p, release: sync.OnceFunc(func() { l.release(p.pid) })}, nil
	}
}

func (l *callerLimitListener) release(pid int) {
	l.mu.Lock()
	if l.open[pid]--; l.open[pid] <= 0 {
		delete(l.open, pid)
	}
	l.mu.Unlock()
	<-l.slots
}

// callerConn is an accepted connection, with its peer's credentials.
type callerConn struct {
	*net.UnixConn
	peer    peer
	release func()
}

func (c *callerConn) Close() error {
	err := c.UnixConn.Close()
	c.release()
	return err
}
