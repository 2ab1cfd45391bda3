package bench

import (
	"slices"
	"time"
)

// Latencies summarises change latencies in milliseconds. Timeouts counts changes never seen
// in the kernel within the change timeout; they are left out of the percentiles but make
// MaxMS at least the timeout.
type Latencies struct {
	Count    int     `json:"count"`
	Timeouts int     `json:"timeouts"`
	P50MS    float64 `json:"p50_ms"`
	P90MS    float64 `json:"p90_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// Summarize computes nearest-rank percentiles of seen, the latencies of the changes that
// were seen, with timeouts more that were not (each waited for timeout).
func Summarize(seen []time.Duration, timeouts int, timeout time.Duration) Latencies {
	l := Latencies{Count: len(seen) + timeouts, Timeouts: timeouts}
	if timeouts > 0 {
		l.MaxMS = ms(timeout)
	}
	if len(seen) == 0 {
		return l
	}
	s := slices.Clone(seen)
	slices.Sort(s)
	l.P50MS, l.P90MS, l.P99MS = ms(rank(s, 50)), ms(rank(s, 90)), ms(rank(s, 99))
	l.MaxMS = max(l.MaxMS, ms(s[len(s)-1]))
	return l
}

// rank is the nearest-rank p-th percentile of sorted, non-empty s.
func rank(s []time.Duration, p int) time.Duration {
	i := (p*len(s) + 99) / 100 // ceil(p/100 * n), 1-based
	return s[max(i, 1)-1]
}

// ms is d in milliseconds, rounded to microseconds.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}
