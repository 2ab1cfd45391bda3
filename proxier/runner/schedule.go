package runner

import "time"

// schedule decides when the next sync is due. It has no clock: callers pass the time.
type schedule struct {
	min, max            time.Duration
	retryBase, retryMax time.Duration

	lastRun  time.Time // start of the last sync (or creation)
	pending  bool      // Run was called since lastRun
	failures int       // consecutive failed syncs
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

// next is the earliest time a sync is due.
func (s *schedule) next() time.Time {
	t := s.lastRun.Add(s.max)
	if s.failures > 0 {
		if r := s.lastRun.Add(s.backoff()); r.Before(t) {
			t = r
		}
	}
	if s.pending && s.failures == 0 {
		if r := s.lastRun.Add(s.min); r.Before(t) {
			t = r
		}
	}
	return t
}

// due reports whether a sync is due at now and why. A retry wins over a periodic sync,
// which wins over a request: the first two are full syncs that cover any request.
func (s *schedule) due(now time.Time) (Reason, bool) {
	if now.Before(s.next()) {
		return 0, false
	}
	switch {
	case s.failures > 0:
		return Retry, true
	case !now.Before(s.lastRun.Add(s.max)):
		return Periodic, true
	default:
		return Requested, true
	}
}

// started records that a sync starts at now; requests until then are served by it.
func (s *schedule) started(now time.Time) {
	s.lastRun = now
	s.pending = false
}

// finished records the sync's outcome.
func (s *schedule) finished(err error) {
	if err != nil {
		s.failures++
	} else {
		s.failures = 0
	}
}
