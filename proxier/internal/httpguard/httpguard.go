// Package httpguard owns the limits of the proxier's TCP HTTP servers (health check node
// ports, /healthz, /metrics): the timeouts that cut off a slow or idle client, the cap on
// header bytes and the cap on connections served at once per listener. Those servers listen
// on node addresses reachable from outside the node, so none of them may be held open
// forever or made to hold unbounded memory by a client.
package httpguard

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits bounds what one client can make a server hold. The zero value means no limit for
// each field; use Default.
type Limits struct {
	ReadHeaderTimeout time.Duration // the request line and headers
	ReadTimeout       time.Duration // the whole request
	WriteTimeout      time.Duration // from the end of the headers to the end of the answer
	IdleTimeout       time.Duration // between requests on a kept-alive connection
	MaxHeaderBytes    int
	// MaxConns caps the connections one listener serves at once; further clients wait in
	// the kernel's accept queue until one closes.
	MaxConns int
}

// Default is what the proxier's servers use: a load balancer probe or a Prometheus scrape
// is one small request answered in well under a second.
var Default = Limits{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      10 * time.Second,
	IdleTimeout:       60 * time.Second,
	MaxHeaderBytes:    16 << 10,
	MaxConns:          64,
}

// Server returns an http.Server serving h with the limits' timeouts and header cap.
func (l Limits) Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// Listener wraps ln so that at most MaxConns of its connections are open at once (ln
// itself when MaxConns is 0). It is safe for concurrent use.
func (l Limits) Listener(ln net.Listener) net.Listener {
	if l.MaxConns <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, l.MaxConns)
}
