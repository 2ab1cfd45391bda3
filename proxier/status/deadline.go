package status

// Why every kernel read goes through a reader: the adapters' calls (netlink dumps,
// iptables-save) take no context, and a read that never returns must not make `kubevs
// status` hang. The reader hands each read to one worker goroutine, in the network namespace
// of the caller, and waits for it at most the step's deadline; a read that does not answer in
// time is reported by name (exit 2) and left behind, since the process exits anyway. One
// worker, not one goroutine per read: the worker must sit in the caller's namespace, and a
// table of thousands of virtual servers is thousands of reads.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// DefaultStepTimeout bounds each kernel read of a status run (one netlink dump, one
// iptables-save) unless --step-timeout says otherwise. A healthy read takes milliseconds.
const DefaultStepTimeout = 10 * time.Second

// TimeoutError is a check that did not answer within its deadline.
type TimeoutError struct {
	// Check names the read, e.g. "list members of set KUBE-CLUSTER-IP".
	Check string
	// After is how long the check was waited for.
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("check %q timed out: no answer after %s", e.Check, e.After.Round(time.Millisecond))
}

// Unwrap makes errors.Is(err, context.DeadlineExceeded) hold.
func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// reader runs reads on its worker, each bounded by step and by ctx.
type reader struct {
	ctx  context.Context
	step time.Duration
	jobs chan func()
	// handoffs counts the jobs given to the worker, for tests.
	handoffs atomic.Int64
}

// newReader starts the worker in the calling thread's network namespace. step bounds each
// read (0: DefaultStepTimeout). Stop it with close once no read is pending.
func newReader(ctx context.Context, step time.Duration) (*reader, error) {
	enter, err := callerNetns()
	if err != nil {
		return nil, err
	}
	if step <= 0 {
		step = DefaultStepTimeout
	}
	r := &reader{ctx: ctx, step: step, jobs: make(chan func())}
	started := make(chan error, 1)
	go func() {
		// Locked and never unlocked: a thread moved into another namespace ends with the
		// goroutine instead of going back to the runtime's pool.
		runtime.LockOSThread()
		if err := enter(); err != nil {
			started <- err
			return
		}
		started <- nil
		for job := range r.jobs {
			job()
		}
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start the kernel reader: %w", err)
	}
	return r, nil
}

// close stops the worker after the read in progress.
func (r *reader) close() { close(r.jobs) }

// do runs read on the worker and returns its error, or a *TimeoutError naming check when it
// has not answered within the step timeout (or ctx's own deadline, if sooner).
func (r *reader) do(check string, read func() error) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.step)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	r.handoffs.Add(1)
	select {
	case r.jobs <- func() { done <- read() }:
	case <-ctx.Done(): // the worker is still stuck in an earlier read
		return r.failed(ctx, check, start)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return r.failed(ctx, check, start)
	}
}

func (r *reader) failed(ctx context.Context, check string, start time.Time) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &TimeoutError{Check: check, After: time.Since(start)}
	}
	return fmt.Errorf("check %q: %w", check, ctx.Err())
}

// each runs read(0) to read(n-1) on the worker as one job, each read still bounded by the
// step timeout and named by check(i) when it does not answer: a table of thousands of
// virtual servers is thousands of reads, and handing each to the worker on its own cost
// 60-170 us of thread wake-ups (BenchmarkReaderDo), 1.7 s at 10,000 virtual servers. The
// waiter wakes once per step, not once per read. It stops at the first error.
func (r *reader) each(n int, check func(i int) string, read func(i int) error) error {
	if n == 0 {
		return nil
	}
	var (
		since     atomic.Int64 // when the read in progress started, in ns since base
		at        atomic.Int64 // which read is in progress
		abandoned atomic.Bool
	)
	base := time.Now()
	done := make(chan error, 1)
	job := func() {
		for i := range n {
			if abandoned.Load() {
				return
			}
			since.Store(int64(time.Since(base))) // before at: a waiter that sees an old since sees the read it names
			at.Store(int64(i))
			if err := read(i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}
	start := time.Now()
	timer := time.NewTimer(r.step)
	defer timer.Stop()
	r.handoffs.Add(1)
	select {
	case r.jobs <- job:
	case <-timer.C: // the worker is still stuck in an earlier read
		return &TimeoutError{Check: check(0), After: time.Since(start)}
	case <-r.ctx.Done():
		return r.failed(r.ctx, check(0), start)
	}
	for {
		select {
		case err := <-done:
			return err
		case <-r.ctx.Done():
			abandoned.Store(true)
			return r.failed(r.ctx, check(int(at.Load())), base.Add(time.Duration(since.Load())))
		case <-timer.C:
			s := since.Load()
			ran := time.Since(base) - time.Duration(s)
			if ran >= r.step {
				i := at.Load()
				if since.Load() == s { // the same read is still in progress
					abandoned.Store(true)
					return &TimeoutError{Check: check(int(i)), After: ran}
				}
				ran = time.Since(base) - time.Duration(since.Load()) // a later read's
			}
			timer.Reset(max(r.step-ran, time.Millisecond))
		}
	}
}

// get is do for a read that returns a value.
func get[T any](r *reader, check string, read func() (T, error)) (T, error) {
	var v T
	err := r.do(check, func() error {
		var err error
		v, err = read()
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}
