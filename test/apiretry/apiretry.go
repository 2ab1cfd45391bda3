// Package apiretry is how the test harnesses (test/bench, test/e2e's soak) write many objects
// to an API server that is slow, as the emulated guest's is: which errors mean "turned away for
// load, try again", a bounded backoff for one request, and a pool of writers.
package apiretry

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Loaded reports whether err is the API server (or the path to it) turning a request away for
// load rather than refusing it: 429, a server or client timeout, 500, 503, a connection reset
// or cut short, a stream the server reset, or client-go's HTTP/2 health check giving up on a
// server too busy to answer a ping.
func Loaded(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	msg := err.Error()
	return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		(errors.As(err, &ne) && ne.Timeout()) ||
		// Neither is typed by client-go: the server's HTTP/2 reset of a request it gave up on,
		// and the health check's verdict on the connection.
		strings.Contains(msg, "stream error") || strings.Contains(msg, "http2: client connection lost")
}

// Backoff bounds the tries of one request. The waits start at First and double up to Max (0:
// no cap); Tries (0: no bound) caps the tries and Budget (0: no bound) the time, a wait that
// would end past it not being taken.
type Backoff struct {
	First, Max time.Duration
	Tries      int
	Budget     time.Duration
}

// Do calls do until it succeeds, fails otherwise than for load (Loaded), or b's bounds are
// reached; it returns do's last error (joined with ctx's if ctx ended a wait).
func (b Backoff) Do(ctx context.Context, do func() error) error {
	var deadline time.Time
	if b.Budget > 0 {
		deadline = time.Now().Add(b.Budget)
	}
	wait := b.First
	for try := 1; ; try++ {
		err := do()
		if err == nil || !Loaded(err) || try == b.Tries || (!deadline.IsZero() && time.Now().Add(wait).After(deadline)) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
		if b.Max > 0 {
			wait = min(wait, b.Max)
		}
	}
}

// Each runs fn(i) for i in [0, n) on workers goroutines, i%workers on worker i. It stops
// handing out work at the first error and returns every error seen, or ctx's error if ctx
// ended first.
func Each(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	workers = max(1, min(workers, n))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && inner.Err() == nil; i += workers {
				if err := fn(inner, i); err != nil {
					errs[w] = err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}
