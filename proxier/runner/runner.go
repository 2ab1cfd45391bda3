// Package runner owns the proxier's sync loop timing: it calls one sync function when asked,
// at once when it is idle and coalescing changes only under load (the delay derives from
// the measured cost of recent partial syncs, bounded by a maximum coalescing delay), runs a
// full resync once per maximum interval without making a waiting change wait for it (its
// expensive reads, Options.Read, run beside the syncs, so no change waits for them either),
// and retries after a failure with exponential backoff.
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

// Func is the work the runner schedules. It reports whether it did a full resync (it may
// decide to for a request; Periodic and Retry ask for one), so the periodic timing counts
// from it and its duration is not taken for the cost of a change. A non-nil error schedules
// a retry.
type Func func(ctx context.Context, why Reason) (full bool, err error)

// Options tunes a Runner. Zero values take the documented defaults.
type Options struct {
	// MinInterval is the most a change waits to be coalesced with others: when changes
	// arrived during the last partial sync, the next one starts min(MinInterval, CostFactor x
	// its duration) after it ended; otherwise (idle) at once. Zero: never waits.
	MinInterval time.Duration
	// MaxInterval is the most time between two full resyncs; a periodic sync runs then.
	MaxInterval time.Duration
	// RetryBase is the first delay after a failure, doubled after each further failure up to
	// RetryMax. Defaults: 1s and MaxInterval.
	RetryBase, RetryMax time.Duration
	// Clock is the time source. Default: the real clock.
	Clock clock.Clock
	// Read, when set, runs before each periodic resync, in a goroutine of its own, while
	// requested syncs go on: the periodic resync runs once it returns. It is where the
	// expensive reads of a resync go, so that no change waits for them; it must not need
	// what the sync function holds. A full sync that runs meanwhile (a retry) makes the
	// runner drop the read: the next periodic resync reads again.
	Read func(ctx context.Context)
}

// Runner runs a Func on the schedule its Options describe. Run may be called from any
// goroutine; Loop runs in one.
type Runner struct {
	name  string
	fn    Func
	clock clock.Clock
	kick  chan struct{}
	s     schedule
	read  func(ctx context.Context)
	// readDone receives when a read started by Loop returned.
	readDone chan struct{}
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
	r := &Runner{
		name:     name,
		fn:       fn,
		clock:    o.Clock,
		kick:     make(chan struct{}, 1),
		s:        newSchedule(o.MinInterval, o.MaxInterval, o.RetryBase, o.RetryMax, o.Clock.Now()),
		read:     o.Read,
		readDone: make(chan struct{}, 1),
	}
	r.s.prep = o.Read != nil
	return r
}

// Run asks for a sync: at once when the runner is idle, after the coalescing delay under
// load. It never blocks; requests made while a sync is pending or running collapse into one.
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
		var timer clock.Timer
		var fire <-chan time.Time // nil, never firing, while only a read is awaited
		if !next.IsZero() {
			d := next.Sub(r.clock.Now())
			if d < 0 {
				d = 0
			}
			timer = r.clock.NewTimer(d)
			fire = timer.C()
		}
		if r.waiting != nil {
			r.waiting(next)
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			if r.s.reading {
				<-r.readDone // the read ends with ctx
			}
			logger.V(2).Info("Runner stopped")
			return
		case <-r.kick:
			r.s.pending = true
		case <-r.readDone:
			r.s.readDone(r.clock.Now())
			logger.V(2).Info("Read for the periodic resync done", "used", r.s.ready)
		case <-fire:
			r.takeKick() // a request made before the sync starts is served by it
			if now := r.clock.Now(); r.s.readDue(now) {
				r.s.startRead()
				go func() { r.read(ctx); r.readDone <- struct{}{} }()
				break
			}
			why, ok := r.s.due(r.clock.Now())
			if !ok {
				break
			}
			r.s.started(r.clock.Now(), why)
			full, err := r.fn(ctx, why)
			r.takeKick() // a request made during the sync: the proxier is loaded
			r.s.finished(r.clock.Now(), full, err)
			if err != nil {
				logger.Error(err, "Sync failed, will retry", "reason", why, "failures", r.s.failures, "retryIn", r.s.backoff())
			}
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// takeKick records a waiting request, if any, without blocking.
func (r *Runner) takeKick() {
	select {
	case <-r.kick:
		r.s.pending = true
	default:
	}
}
