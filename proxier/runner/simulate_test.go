package runner

import (
	"slices"
	"testing"
	"time"
)

// simResult is what a simulated run of the schedule gave.
type simResult struct {
	syncs, full int
	arrived     []time.Time     // per change, in the order applied
	latencies   []time.Duration // per change, from its arrival to the end of the sync that applied it
	fullSpans   [][2]time.Time  // start and end of each full sync
}

// fullEndAt returns the end of the full sync running at t, or t when none runs.
func (r simResult) fullEndAt(t time.Time) time.Time {
	for _, sp := range r.fullSpans {
		if !t.Before(sp[0]) && t.Before(sp[1]) {
			return sp[1]
		}
	}
	return t
}

func (r simResult) max() time.Duration { return slices.Max(r.latencies) }

// simulate drives s on simulated time: changes arrive at arrivals (offsets from t0, sorted);
// a partial sync covering n changes lasts partial(n), a full sync lasts full. A change that
// arrives during a sync is recorded as pending before the sync's end (as Loop does). It runs
// until every change is applied and returns the syncs done.
func simulate(t *testing.T, s schedule, arrivals []time.Duration, partial func(n int) time.Duration, full time.Duration) simResult {
	t.Helper()
	var res simResult
	now := t0
	var queue []time.Time
	for i := 0; i < len(arrivals) || len(queue) > 0; {
		for ; i < len(arrivals) && !t0.Add(arrivals[i]).After(now); i++ {
			queue = append(queue, t0.Add(arrivals[i]))
			s.pending = true
		}
		why, ok := s.due(now)
		if !ok {
			next := s.next()
			if i < len(arrivals) && t0.Add(arrivals[i]).Before(next) {
				next = t0.Add(arrivals[i])
			}
			if !next.After(now) {
				t.Fatalf("at %v: schedule not due but next is %v", now.Sub(t0), next.Sub(t0))
			}
			now = next
			continue
		}
		s.started(now, why)
		covered := len(queue)
		took := full
		if why == Requested {
			took = partial(covered)
		} else {
			res.full++
		}
		if why != Requested {
			res.fullSpans = append(res.fullSpans, [2]time.Time{now, now.Add(took)})
		}
		now = now.Add(took)
		res.syncs++
		for _, a := range queue[:covered] {
			res.arrived = append(res.arrived, a)
			res.latencies = append(res.latencies, now.Sub(a))
		}
		queue = queue[covered:]
		for ; i < len(arrivals) && !t0.Add(arrivals[i]).After(now); i++ { // arrived during the sync
			queue = append(queue, t0.Add(arrivals[i]))
			s.pending = true
		}
		s.finished(now, why != Requested, nil)
		if res.syncs > 100000 {
			t.Fatal("simulation does not converge")
		}
	}
	return res
}

// evenly returns n arrivals spread over d from start.
func evenly(n int, start, d time.Duration) []time.Duration {
	a := make([]time.Duration, n)
	for i := range a {
		a[i] = start + d*time.Duration(i)/time.Duration(n)
	}
	return a
}

// linear is a partial sync's cost: fixed plus per change.
func linear(fixed, per time.Duration) func(int) time.Duration {
	return func(n int) time.Duration { return fixed + per*time.Duration(n) }
}

func TestScheduleUnderBursts(t *testing.T) {
	tests := []struct {
		name     string
		min      time.Duration
		arrivals []time.Duration
		partial  func(int) time.Duration
		// maxSyncs bounds the syncs done; maxLatency bounds every change's latency.
		maxSyncs   int
		maxLatency time.Duration
	}{
		{
			name:     "isolated changes are applied at once: latency is the sync's own cost",
			min:      time.Second,
			arrivals: evenly(20, time.Second, 20*time.Second),
			partial:  linear(5*ms, 50*time.Microsecond),
			maxSyncs: 20, maxLatency: 5*ms + 50*time.Microsecond,
		},
		{
			name:     "a burst of 10,000 changes in 1s costs few syncs",
			min:      time.Second,
			arrivals: evenly(10000, 0, time.Second),
			partial:  linear(2*ms, 50*time.Microsecond),
			maxSyncs: 10, maxLatency: 1500 * ms,
		},
		{
			name:     "10,000 changes at once cost one sync",
			min:      time.Second,
			arrivals: make([]time.Duration, 10000),
			partial:  linear(2*ms, 50*time.Microsecond),
			maxSyncs: 1, maxLatency: 502 * ms,
		},
		{
			// 10,000 changes/s at 50us each: half the CPU. Syncs grow until the delay reaches
			// min; each then covers ~2s of changes and lasts ~1s: latency is at most min plus
			// two syncs.
			name:     "a sustained stream is coalesced at most min apart",
			min:      time.Second,
			arrivals: evenly(100000, 0, 10*time.Second),
			partial:  linear(2*ms, 50*time.Microsecond),
			maxSyncs: 12, maxLatency: 3 * time.Second,
		},
		{
			name:     "a light stream on a cheap proxier never waits for min",
			min:      time.Second,
			arrivals: evenly(1000, 0, 10*time.Second),
			partial:  linear(time.Millisecond, 10*time.Microsecond),
			maxSyncs: 1000, maxLatency: time.Millisecond + 10*time.Microsecond,
		},
		{
			// A change every 30ms, each after the 20ms sync of the previous one ended: the
			// proxier is busy two thirds of the time but never has a change waiting.
			name:     "changes arriving one after the other's sync are applied at once",
			min:      time.Second,
			arrivals: evenly(100, 0, 3*time.Second),
			partial:  linear(20*ms, 0),
			maxSyncs: 100, maxLatency: 20 * ms,
		},
		{
			name:     "min zero: a burst costs more syncs but latency stays at the sync's cost",
			min:      0,
			arrivals: evenly(10000, 0, time.Second),
			partial:  linear(2*ms, 50*time.Microsecond),
			maxSyncs: 600, maxLatency: 10 * ms,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSchedule(tt.min, time.Hour, time.Second, time.Hour, t0)
			res := simulate(t, s, tt.arrivals, tt.partial, 0)
			t.Logf("%d changes: %d syncs, max latency %v", len(tt.arrivals), res.syncs, res.max())
			if res.syncs > tt.maxSyncs {
				t.Errorf("%d syncs, want at most %d", res.syncs, tt.maxSyncs)
			}
			if res.max() > tt.maxLatency {
				t.Errorf("max latency %v, want at most %v", res.max(), tt.maxLatency)
			}
		})
	}
}

// TestPeriodicResyncNeverDelaysAChange: changes arrive all along, 10 a second, while a full
// resync (lasting 3s, as at 10,000 Services in the VM) falls due every 30s. No change waits
// for a resync that was due before it arrived, and a change that arrives during one runs
// as soon as it ends, without any coalescing delay.
func TestPeriodicResyncNeverDelaysAChange(t *testing.T) {
	const resync = 3 * time.Second
	s := newSchedule(time.Second, 30*time.Second, time.Second, 30*time.Second, t0)
	arrivals := evenly(1200, 0, 2*time.Minute)
	// A change arriving at a periodic's due moment goes first.
	arrivals = append(arrivals, 30*time.Second, 60*time.Second)
	slices.Sort(arrivals)
	res := simulate(t, s, arrivals, linear(5*ms, 50*time.Microsecond), resync)
	if res.full < 3 {
		t.Errorf("%d full resyncs in 2 minutes, want one per 30s", res.full)
	}
	// Latency: the sync's own cost, after the rest of a resync that was running when the
	// change arrived; a resync that was due, or started later, never adds to it.
	// The sync's own cost covers at most the 31 changes that arrived during a resync.
	own := linear(5*ms, 50*time.Microsecond)(int(resync/(100*ms)) + 1)
	for i, l := range res.latencies {
		if bound := res.fullEndAt(res.arrived[i]).Sub(res.arrived[i]) + own; l > bound {
			t.Errorf("change at %v waited %v, want at most %v", res.arrived[i].Sub(t0), l, bound)
		}
	}
	t.Logf("max latency %v over %d syncs (%d full)", res.max(), res.syncs, res.full)
}
