package runner

import "time"

// CostFactor is k in the coalescing rule: after a partial sync that took c and ended
// with a change already waiting, the next one may start k*c after it ended (at most the
// min interval later). Under a sustained stream of changes the proxier therefore spends at
// most 1/(k+1) of its time in partial syncs (a fifth), and a burst that arrives faster than
// it is applied makes each sync cover more changes than the one before: N changes cost
// O(log N) syncs.
const CostFactor = 4

// schedule decides when the next sync is due. It has no clock: callers pass the time.
//
// The rule:
//   - a change (Run) is applied at once when the proxier is idle, that is when no change
//     was waiting at the end of the last partial sync (a change that arrives after it ended
//     found the proxier idle, however soon). When one was waiting (changes arrive faster
//     than they are applied), the next partial sync starts gap() after the last one ended,
//     gap = min(CostFactor x that sync's duration, min). min is thus an upper bound on the
//     delay added to coalesce changes, not a floor; min = 0 never delays.
//   - a full resync runs max after the start of the last full sync, whatever partial syncs
//     ran meanwhile. When it falls due while a change waits, the change goes first (once):
//     a periodic resync never makes a waiting change wait for it.
//   - with a read step (prep, Options.Read), a periodic resync that falls due first starts
//     the read, which runs beside the syncs; changes keep running as partial syncs, and
//     the periodic resync runs only once the read is done (ready).
//   - after a failure, a retry (a full resync) runs with exponential backoff from the failed
//     sync's start. When the failed sync was partial, changes do not wait for the retry:
//     they run as partial syncs meanwhile, and neither their success nor their failure
//     moves it. When a full sync failed, the proxier's view of the kernel is not to be
//     trusted: changes wait for the retry. Only a successful full sync ends the failures.
//
// Full syncs count neither in the cost nor in the gap: their duration says nothing about
// what one change costs, and a change that arrived during one runs as soon as it ends.
type schedule struct {
	min, max            time.Duration
	retryBase, retryMax time.Duration

	lastStart time.Time     // start of the last sync (or creation)
	partEnd   time.Time     // end of the last partial sync (or creation)
	lastFull  time.Time     // start of the last full sync (or creation)
	cost      time.Duration // duration of the last partial sync
	loaded    bool          // a request was waiting when the last partial sync ended
	pending   bool          // Run was called since lastStart
	deferred  bool          // a request went before the due periodic resync
	failures  int           // consecutive failed syncs since the last successful full sync
	retryAt   time.Time     // when failures > 0: when the retry is due
	fullFail  bool          // when failures > 0: a full sync failed; requests wait for the retry
	prep      bool          // a read runs before each periodic resync
	reading   bool          // that read is running
	ready     bool          // that read is done and the periodic resync may run
}

// newSchedule returns a schedule created at now: no sync yet, the first periodic resync
// max after now.
func newSchedule(min, max, retryBase, retryMax time.Duration, now time.Time) schedule {
	return schedule{min: min, max: max, retryBase: retryBase, retryMax: retryMax, lastStart: now, partEnd: now, lastFull: now}
}

// backoff is the delay after the last failure: retryBase doubled per further failure, at
// most retryMax, never below min.
func (s *schedule) backoff() time.Duration {
	if s.failures == 0 {
		return 0
	}
	d := s.retryBase
	for i := 1; i < s.failures && d < s.retryMax; i++ {
		d *= 2
	}
	if d > s.retryMax {
		d = s.retryMax
	}
	if d < s.min {
		d = s.min
	}
	return d
}

// gap is the least time between the end of a partial sync and the start of the next one.
func (s *schedule) gap() time.Duration {
	if !s.loaded {
		return 0
	}
	g := CostFactor * s.cost
	if g > s.min {
		g = s.min
	}
	return g
}

// periodicDue reports whether the periodic full resync is due at now.
func (s *schedule) periodicDue(now time.Time) bool { return !now.Before(s.lastFull.Add(s.max)) }

// periodicReady reports whether the periodic full resync is due at now and may run: its
// read, if any, is done.
func (s *schedule) periodicReady(now time.Time) bool {
	return s.periodicDue(now) && (!s.prep || s.ready)
}

// readDue reports whether the read of the periodic resync due at now should start.
func (s *schedule) readDue(now time.Time) bool {
	return s.prep && !s.reading && !s.ready && s.periodicDue(now)
}

// startRead records that the read started; readDone that it ended at now. A read that ends
// when no periodic resync is due (a full sync ran meanwhile) is not used.
func (s *schedule) startRead() { s.reading = true }

func (s *schedule) readDone(now time.Time) {
	s.reading = false
	s.ready = s.periodicDue(now)
}

// next is the earliest time a sync (or the read of a periodic resync) is due; the zero time
// when none is (only while a read runs, with no request and no retry waiting).
func (s *schedule) next() time.Time {
	t := s.lastFull.Add(s.max)
	if s.reading {
		t = time.Time{} // the periodic resync waits for its read
	}
	if s.failures > 0 && (t.IsZero() || s.retryAt.Before(t)) {
		t = s.retryAt
	}
	if s.pending && !(s.failures > 0 && s.fullFail) {
		if r := s.partEnd.Add(s.gap()); t.IsZero() || r.Before(t) {
			t = r
		}
	}
	return t
}

// due reports whether a sync is due at now and why. A due retry wins (it is a full sync
// that covers any request); a due periodic resync lets a waiting request go first, once.
func (s *schedule) due(now time.Time) (Reason, bool) {
	if n := s.next(); n.IsZero() || now.Before(n) {
		return 0, false
	}
	switch {
	case s.failures > 0 && !now.Before(s.retryAt):
		return Retry, true
	case s.periodicDue(now) && s.prep && !s.ready && !s.requestDue(now):
		return 0, false // the periodic resync's read runs first (readDue); requests go meanwhile
	case s.periodicReady(now) && (!s.pending || s.deferred || (s.failures > 0 && s.fullFail)):
		return Periodic, true
	default: // the request's time came, or the periodic's and the request goes first
		return Requested, true
	}
}

// requestDue reports whether a waiting request's time came at now.
func (s *schedule) requestDue(now time.Time) bool {
	return s.pending && !(s.failures > 0 && s.fullFail) && !now.Before(s.partEnd.Add(s.gap()))
}

// started records that a sync for why starts at now; requests until then are served by it.
func (s *schedule) started(now time.Time, why Reason) {
	if why == Requested && s.periodicReady(now) {
		s.deferred = true
	}
	s.lastStart = now
	s.pending = false
}

// finished records the end of the sync at now: whether it was a full resync (whatever the
// reason it was run for) and its outcome. Requests made during the sync must be recorded
// (pending) before, so the schedule knows whether the proxier is loaded.
func (s *schedule) finished(now time.Time, full bool, err error) {
	if full {
		s.lastFull = s.lastStart
		s.deferred = false
		s.ready = false
	} else {
		s.cost = now.Sub(s.lastStart)
		s.partEnd = now
		s.loaded = s.pending
	}
	switch {
	case err != nil && (full || s.failures == 0):
		s.failures++
		s.retryAt = s.lastStart.Add(s.backoff())
		s.fullFail = full
	case err == nil && full:
		s.failures = 0
	}
}
