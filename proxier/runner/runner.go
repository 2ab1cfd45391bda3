// Package runner owns the proxier's sync loop timing: a bounded-frequency runner that calls
// one sync function when asked, never more often than a minimum interval, at least once per
// maximum interval, and again after a failure with exponential backoff.
//
// The timing rules live in schedule, a plain value with no goroutine and no clock, so they
// are tested exhaustively; Runner only drives a schedule with an injected clock.
package runner

import (
	"context"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Reason tells the sync function why it runs. Periodic and Retry ask for a full resync.
type Reason int

// The reasons a sync runs.
const (
	// Requested: Run was called (something changed).
	Requested Reason = iota
	// Periodic: the maximum interval passed since the last sync.
	Periodic
	// Retry: the last sync failed.
	Retry
)

func (r Reason) String() string {
	switch r {
	case Requested:
		return "requested"
	case Periodic:
		return "periodic"
	case Retry:
		return "retry"
	}
	return "unknown"
}

// Func is the work the runner schedules. A non-nil error schedules a retry.
type Func func(ctx context.Context, why Reason) error

// Options tunes a Runner. Zero values take the documented defaults.
type Options struct {
	// MinInterval is the least time between the starts of two syncs. Zero: no limit.
	MinInterval time.Duration
	// MaxInterval is the most time between two syncs; a periodic sync runs then.
	MaxInterval time.Duration
	// RetryBase is the first delay after a failure, doubled after each further failure up to
	// RetryMax. Defaults: 1s and MaxInterval.
	RetryBase, RetryMax time.Duration
	// Clock is the time source. Default: the real clock.
	Clock clock.Clock
}

// Runner runs a Func on the schedule its Options describe. Run may be called from any
// goroutine; Loop runs in one.
type Runner struct {
	name  string
	fn    Func
	clock clock.Clock
	kick  chan struct{}
	s     schedule
	// waiting, when set by tests, is called each time Loop is about to wait until next.
	waiting func(next time.Time)
}

// New returns a Runner named name (for logs) that calls fn.
func New(name string, fn Func, o Options) *Runner {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = o.MaxInterval
	}
	return &Runner{
		name:  name,
		fn:    fn,
		clock: o.Clock,
		kick:  make(chan struct{}, 1),
		s: schedule{
			min: o.MinInterval, max: o.MaxInterval,
			retryBase: o.RetryBase, retryMax: o.RetryMax,
			lastRun: o.Clock.Now(),
		},
	}
}

// Run asks for a sync as soon as the minimum interval allows. It never blocks; requests
// made while a sync is pending or running collapse into one.
func (r *Runner) Run() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Loop runs syncs until ctx is done. The first sync happens when Run is first called or
// when MaxInterval has passed since New.
func (r *Runner) Loop(ctx context.Context) {
	logger := klog.FromContext(ctx).WithValues("runner", r.name)
	logger.V(2).Info("Runner started", "minInterval", r.s.min, "maxInterval", r.s.max)
	for {
		next := r.s.next()
		d := next.Sub(r.clock.Now())
		if d < 0 {
			d = 0
		}
		timer := r.clock.NewTimer(d)
		if r.waiting != nil {
			r.waiting(next)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			logger.V(2).Info("Runner stopped")
			return
		case <-r.kick:
			r.s.pending = true
		case <-timer.C():
			why, ok := r.s.due(r.clock.Now())
			if !ok {
				break
			}
			start := r.clock.Now()
			r.s.started(start)
			err := r.fn(ctx, why)
			r.s.finished(err)
			if err != nil {
				logger.Error(err, "Sync failed, will retry", "reason", why, "failures", r.s.failures, "retryIn", r.s.backoff())
			}
		}
		timer.Stop()
	}
}
