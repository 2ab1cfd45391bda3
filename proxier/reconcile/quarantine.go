package reconcile

// Failure isolation. One virtual server whose kernel writes always fail (a Service annotated
// with a scheduler whose module the kernel lacks: IPVS answers ENOENT or EINVAL) must not
// make every sync fail: a failed sync runs full, changes then wait for the runner's backoff,
// /livez turns 503 and every healthCheckNodePort answers 503. So the Reconciler counts the
// consecutive failed converges of each virtual server; at QuarantineAfter of them the virtual
// server is quarantined: logged once, counted, and left out of the errors the syncs return,
// so every other Service keeps its O(change) syncs and the node stays healthy. A
// quarantined virtual server is retried on its own exponential backoff (by RetryQuarantined,
// or by any sync that touches it once its retry is due), and leaves quarantine at its first
// success. Quarantine isolates one object, never a broken kernel: when a converge tried
// several virtual servers and none succeeded, the errors are returned all the same.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Quarantine defaults.
const (
	// DefaultQuarantineAfter is how many converges in a row of one virtual server may fail
	// before it is quarantined.
	DefaultQuarantineAfter = 3
	// DefaultQuarantineRetry is the first retry delay of a quarantined virtual server; it
	// doubles at each failed retry, up to MaxQuarantineRetry.
	DefaultQuarantineRetry = 5 * time.Second
	// MaxQuarantineRetry bounds the retry delay.
	MaxQuarantineRetry = 5 * time.Minute
)

// Quarantine reasons: the kernel operation that failed.
const (
	ReasonAddVirtualServer    = "add_virtual_server"
	ReasonUpdateVirtualServer = "update_virtual_server"
	ReasonDeleteVirtualServer = "delete_virtual_server"
	ReasonRealServers         = "real_servers"
)

// opError names the kernel operation a converge failed in, for the quarantine's reason.
type opError struct {
	reason string
	err    error
}

func (e *opError) Error() string { return e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

func failed(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &opError{reason: reason, err: err}
}

func reasonOf(err error) string {
	if oe := (*opError)(nil); errors.As(err, &oe) {
		return oe.reason
	}
	return "other"
}

// failure is the failure record of one virtual server.
type failure struct {
	count       int // consecutive failed converges
	reason      string
	err         error
	quarantined bool
	retry       time.Duration
	next        time.Time // when a quarantined one is tried again
}

// Quarantined describes a quarantined virtual server.
type Quarantined struct {
	Key      ipvs.Key
	Reason   string
	Failures int
	Err      error
	Next     time.Time
}

// tally counts the virtual servers one converge tried: the ones that converged, the ones
// that failed, and the errors quarantine hid.
type tally struct {
	ok, failed int
	hidden     []error
}

// wholesale returns the hidden errors when nothing converged and several virtual servers
// failed (or wait in quarantine): then the kernel is broken (IPVS gone, netlink refused), not one object, and the
// sync must fail so that health tells.
func (tl *tally) wholesale() error {
	if tl.ok > 0 || tl.failed < 2 || len(tl.hidden) == 0 {
		return nil
	}
	return fmt.Errorf("every virtual server tried failed (%d), quarantine does not hide it: %w", tl.failed, errors.Join(tl.hidden...))
}

// isolate converges virtual server k unless it is quarantined and its retry is not due, and
// keeps its failure record and tl's counts. It returns the converge's error unless k is
// (now) quarantined.
func (r *Reconciler) isolate(ctx context.Context, k ipvs.Key, tl *tally) error {
	now := r.opts.Now()
	f := r.failures[k]
	if _, _, wanted := r.m.want(k); f != nil && !wanted && r.m.vs[k] == nil {
		delete(r.failures, k) // gone from the kernel and from the Services: nothing to retry
		f = nil
	}
	if f != nil && f.quarantined && now.Before(f.next) {
		tl.failed++ // counted with its last error: still failing as far as anyone knows
		tl.hidden = append(tl.hidden, f.err)
		return nil
	}
	err := r.m.countWrites(k, func() error { return r.convergeVS(ctx, k) })
	logger := klog.FromContext(ctx)
	if err == nil {
		tl.ok++
		if f != nil && f.quarantined {
			logger.Info("Virtual server left quarantine", "virtualServer", k, "failures", f.count)
		}
		delete(r.failures, k)
		return nil
	}
	if f == nil {
		f = &failure{}
		r.failures[k] = f
	}
	f.count++
	f.reason, f.err = reasonOf(err), err
	tl.failed++
	switch {
	case f.quarantined:
		f.retry = min(2*f.retry, MaxQuarantineRetry)
		f.next = now.Add(f.retry)
		logger.V(2).Info("Quarantined virtual server failed again", "virtualServer", k, "failures", f.count, "nextRetry", f.next, "err", err)
		tl.hidden = append(tl.hidden, err)
		return nil
	case r.opts.QuarantineAfter > 0 && f.count >= r.opts.QuarantineAfter:
		f.quarantined = true
		f.retry = r.opts.QuarantineRetry
		f.next = now.Add(f.retry)
		r.quarantines[f.reason]++
		logger.Error(err, "Quarantining a virtual server whose kernel writes keep failing; the other Services go on", "virtualServer", k, "reason", f.reason, "failures", f.count, "nextRetry", f.next)
		tl.hidden = append(tl.hidden, err)
		return nil
	}
	return err
}

// Quarantined lists the quarantined virtual servers, sorted by key.
func (r *Reconciler) Quarantined() []Quarantined {
	var out []Quarantined
	for k, f := range r.failures {
		if f.quarantined {
			out = append(out, Quarantined{Key: k, Reason: f.reason, Failures: f.count, Err: f.err, Next: f.next})
		}
	}
	slices.SortFunc(out, func(a, b Quarantined) int { return desired.CompareKeys(a.Key, b.Key) })
	return out
}

// Quarantines returns how many times a virtual server was quarantined since New, by reason.
func (r *Reconciler) Quarantines() map[string]int {
	out := make(map[string]int, len(r.quarantines))
	for k, v := range r.quarantines {
		out[k] = v
	}
	return out
}

// HasQuarantined reports whether any virtual server is quarantined (due or not).
func (r *Reconciler) HasQuarantined() bool {
	for _, f := range r.failures {
		if f.quarantined {
			return true
		}
	}
	return false
}

// RetryDue reports whether a quarantined virtual server's retry is due.
func (r *Reconciler) RetryDue() bool {
	now := r.opts.Now()
	for _, f := range r.failures {
		if f.quarantined && !now.Before(f.next) {
			return true
		}
	}
	return false
}

// RetryQuarantined converges the quarantined virtual servers whose retry is due, and nothing
// else. The caller runs it now and then (with FinishDrains); syncs retry them too.
func (r *Reconciler) RetryQuarantined(ctx context.Context) error {
	if !r.started {
		return nil
	}
	var t touched
	now := r.opts.Now()
	for k, f := range r.failures {
		if f.quarantined && !now.Before(f.next) {
			t.vs = append(t.vs, k)
		}
	}
	if len(t.vs) == 0 {
		return nil
	}
	t.sort()
	return r.converge(ctx, &t)
}
