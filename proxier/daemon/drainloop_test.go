package daemon

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

// TestWhilePending: the drain loop never ticks while there is no work, however long the
// clock runs; it ticks once woken with work, keeps ticking under a stream of wakes, stops
// when the work is done, and finds work that appears without a wake after idle.
func TestWhilePending(t *testing.T) {
	const interval, idle = time.Second, time.Minute
	clk := testingclock.NewFakeClock(time.Unix(1000, 0))
	var pending atomic.Bool
	var ticks atomic.Int32
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		whilePending(ctx, clk, interval, idle, wake, pending.Load, func(context.Context) { ticks.Add(1) })
	}()
	// advance moves the fake clock by interval n times, giving the loop time to react.
	advance := func(n int) {
		for range n {
			clk.Step(interval)
			time.Sleep(2 * time.Millisecond)
		}
	}
	advanceUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (%d ticks)", what, ticks.Load())
			}
			advance(1)
		}
	}

	advance(30) // less than idle: the loop sleeps on its idle timer
	if n := ticks.Load(); n != 0 {
		t.Fatalf("%d ticks with nothing pending, want 0", n)
	}

	pending.Store(true)
	wake <- struct{}{} // a sync ended with work
	advanceUntil("three ticks", func() bool { return ticks.Load() >= 3 })

	stop := make(chan struct{})
	go func() { // syncs end all the time: the ticks go on
		for {
			select {
			case <-stop:
				return
			case wake <- struct{}{}:
			default:
				time.Sleep(time.Millisecond)
			}
		}
	}()
	base := ticks.Load()
	advanceUntil("three more ticks under wakes", func() bool { return ticks.Load() >= base+3 })
	close(stop)

	pending.Store(false)
	advance(2) // a tick in flight may still land
	base = ticks.Load()
	advance(50)
	if n := ticks.Load(); n != base {
		t.Fatalf("%d ticks after the work was done, want none more than %d", n, base)
	}

	pending.Store(true) // work without a wake: found by the idle check
	advanceUntil("a tick after the idle check", func() bool { return ticks.Load() > base })

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not return when its context ended")
	}
}
