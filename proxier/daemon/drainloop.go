package daemon

// The drain loop finishes real server drains and retries quarantined virtual servers. Both
// exist only after a sync made them (a drain starts when an endpoint goes; a virtual server
// is quarantined after failed syncs; the first sync restores drains from the drain file), so
// the loop ticks only while the reconciler holds either, and otherwise sleeps until a sync
// ends. A loop ticking every second whatever the state woke the idle proxier 300 times in
// 5 minutes, its only timer faster than the periodic resync; in the test VM at 10,000
// Services the Go scheduler (runtime.findRunnable) was a quarter of the idle CPU profile
// (make bench-e2e, 7 Dec).

import (
	"context"
	"time"

	"k8s.io/utils/clock"
)

// drainIdleCheck bounds the loop's sleep when nothing is pending: a safety net for work a
// future code path might create without waking the loop.
const drainIdleCheck = time.Minute

// wakeDrains tells the drain loop that a sync ended. It never blocks.
func (d *Daemon) wakeDrains() {
	select {
	case d.drainWake <- struct{}{}:
	default: // a wake is already pending
	}
}

// drainsPending reports whether the reconciler holds drains or quarantined virtual servers.
func (d *Daemon) drainsPending() bool {
	d.kmu.Lock()
	defer d.kmu.Unlock()
	return d.started && (d.reconciler.Draining() > 0 || d.reconciler.HasQuarantined())
}

// whilePending calls fn every interval for as long as pending reports work; otherwise it
// sleeps until wake is signalled or idle has passed, and asks again. While busy it does not
// listen to wake, so a stream of syncs never postpones a tick. It returns when ctx is done.
func whilePending(ctx context.Context, clk clock.Clock, interval, idle time.Duration, wake <-chan struct{}, pending func() bool, fn func(context.Context)) {
	for {
		if pending() {
			select {
			case <-ctx.Done():
				return
			case <-clk.After(interval):
			}
			fn(ctx)
			continue
		}
		t := clk.NewTimer(idle)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			t.Stop()
		case <-t.C():
		}
	}
}
