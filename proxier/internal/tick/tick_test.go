package tick

import (
	"context"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestEvery: fn runs once per interval on the clock, and Every returns when ctx ends.
func TestEvery(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() { Every(ctx, clk, time.Minute, func(context.Context) { calls <- struct{}{} }); close(done) }()
	for range 3 {
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		select {
		case <-calls:
			t.Fatal("fn ran before its interval")
		default:
		}
		clk.Step(time.Minute)
		select {
		case <-calls:
		case <-time.After(10 * time.Second):
			t.Fatal("fn did not run after an interval")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
}
