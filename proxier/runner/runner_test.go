package runner

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

type call struct {
	at  time.Duration
	why Reason
}

// harness drives a Runner on a fake clock: every time advance happens only while the loop
// waits, so the test is deterministic.
type harness struct {
	t       *testing.T
	clock   *clocktesting.FakeClock
	r       *Runner
	waiting chan time.Time
	next    time.Time // the deadline the loop waits for
	calls   chan call
	errs    []error       // results of successive syncs; nil when exhausted
	took    time.Duration // how long each sync lasts on the fake clock
	during  func()        // called by each sync, when set
}

func newHarness(t *testing.T, o Options, errs ...error) *harness {
	h := &harness{t: t, clock: clocktesting.NewFakeClock(t0), waiting: make(chan time.Time), calls: make(chan call, 100), errs: errs}
	o.Clock = h.clock
	h.r = New("test", func(_ context.Context, why Reason) (bool, error) {
		h.calls <- call{h.clock.Now().Sub(t0), why}
		h.clock.Step(h.took)
		if h.during != nil {
			h.during()
		}
		full := why != Requested
		if len(h.errs) == 0 {
			return full, nil
		}
		err := h.errs[0]
		h.errs = h.errs[1:]
		return full, err
	}, o)
	h.r.waiting = func(next time.Time) { h.waiting <- next }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.r.Loop(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		for {
			select {
			case <-done:
				return
			case <-h.waiting:
			}
		}
	})
	h.wait()
	return h
}

// wait blocks until the loop waits again.
func (h *harness) wait() {
	h.t.Helper()
	select {
	case h.next = <-h.waiting:
	case <-time.After(10 * time.Second):
		h.t.Fatalf("runner loop did not come back to wait")
	}
}

// run calls Run and lets the loop take the request.
func (h *harness) run() { h.r.Run(); h.wait() }

// advance moves the fake clock to offset, one loop wake-up at a time.
func (h *harness) advance(to time.Duration) {
	h.t.Helper()
	for {
		now := h.clock.Now().Sub(t0)
		if now >= to {
			return
		}
		step := to - now
		if h.next.IsZero() { // the loop waits for no time, only for a read or a request
			h.clock.Step(step)
			return
		}
		next := h.next.Sub(t0)
		if next < now {
			next = now
		}
		if next-now < step {
			step = next - now
		}
		h.clock.Step(step)
		if h.clock.Now().Sub(t0) >= next {
			h.wait()
		}
	}
}

func (h *harness) collected() []call {
	var got []call
	for {
		select {
		case c := <-h.calls:
			got = append(got, c)
		default:
			return got
		}
	}
}

func TestRunnerLoop(t *testing.T) {
	o := Options{MinInterval: time.Second, MaxInterval: 10 * time.Second, RetryBase: 2 * time.Second}
	h := newHarness(t, o, nil, errors.New("boom"), nil, errors.New("boom"))
	h.run() // at 0: the runner is idle, runs at once
	h.advance(1500 * time.Millisecond)
	h.run() // runs at once at 1.5s, fails: a retry at 3.5s
	h.advance(2 * time.Second)
	h.run() // runs at once at 2s and succeeds; the retry stays at 3.5s, fails, the next at 7.5s succeeds
	h.advance(25 * time.Second)
	want := []call{
		{0, Requested}, {1500 * time.Millisecond, Requested}, {2 * time.Second, Requested},
		{3500 * time.Millisecond, Retry}, {7500 * time.Millisecond, Retry}, {17500 * time.Millisecond, Periodic},
	}
	if diff := cmp.Diff(want, h.collected(), cmp.AllowUnexported(call{})); diff != "" {
		t.Errorf("sync calls (-want +got):\n%s", diff)
	}
}

func TestRunCollapsesRequests(t *testing.T) {
	h := newHarness(t, Options{MinInterval: time.Second, MaxInterval: time.Minute})
	h.took = 100 * time.Millisecond
	busy := 2
	h.during = func() { // a request arrives during each of the first two syncs
		if busy > 0 {
			busy--
			h.r.Run()
		}
	}
	h.run() // runs at once, lasts until 100ms
	h.advance(time.Millisecond)
	for range 5 {
		h.run()
	}
	h.advance(5 * time.Second)
	// The first sync ended with a request waiting: the next one starts CostFactor x 100ms
	// after it and covers it and the five made meanwhile. That one too ended with a request
	// waiting: the next starts 600ms + 400ms; then the runner is idle.
	want := []call{{0, Requested}, {500 * time.Millisecond, Requested}, {time.Second, Requested}}
	if diff := cmp.Diff(want, h.collected(), cmp.AllowUnexported(call{})); diff != "" {
		t.Errorf("sync calls (-want +got):\n%s", diff)
	}
}

// TestPeriodicReadRunsBesideChanges: with a Read step, a periodic resync that falls due
// starts the read in its own goroutine; while the read is blocked, a change runs at once as
// a partial sync, and the periodic resync runs only once the read returned.
func TestPeriodicReadRunsBesideChanges(t *testing.T) {
	started, release := make(chan struct{}, 10), make(chan struct{})
	var reads atomic.Int32
	o := Options{MinInterval: time.Second, MaxInterval: 10 * time.Second, Read: func(ctx context.Context) {
		reads.Add(1) // one read at a time: the runner never starts another before this one returned
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
	}}
	h := newHarness(t, o)
	h.advance(10 * time.Second) // the periodic resync falls due: its read starts
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the read did not start")
	}
	if !h.next.IsZero() {
		t.Fatalf("while only the read is awaited the loop waits for %v, want no timer", h.next.Sub(t0))
	}
	h.run() // a change while the read is blocked
	h.advance(10*time.Second + 100*time.Millisecond)
	if diff := cmp.Diff([]call{{10 * time.Second, Requested}}, h.collected(), cmp.AllowUnexported(call{})); diff != "" {
		t.Fatalf("sync calls while the read is blocked (-want +got):\n%s", diff)
	}
	close(release)
	h.wait() // the loop took the read's end
	h.advance(20*time.Second + 100*time.Millisecond)
	h.wait() // the next read returned at once
	h.advance(21 * time.Second)
	want := []call{{10*time.Second + 100*time.Millisecond, Periodic}, {20*time.Second + 100*time.Millisecond, Periodic}}
	if diff := cmp.Diff(want, h.collected(), cmp.AllowUnexported(call{})); diff != "" {
		t.Errorf("sync calls after the read (-want +got):\n%s", diff)
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("%d reads, want one per periodic resync (2)", n)
	}
}
