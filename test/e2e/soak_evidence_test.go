package e2e

// Evidence for the soak's traffic failures (soak_test.go): a watch on the soak process's own
// scheduling, and, for each new connection that failed outside every fault window, what
// happened around it: how long the soak process itself could not run during the attempt,
// how long since the last fault window closed, and the proxier's syncs (it runs at -v=2,
// which logs each) in the seconds before and during the attempt.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// stallTick paces the stall watch; a tick later than stallMin is a stall.
const (
	stallTick = 50 * time.Millisecond
	stallMin  = 300 * time.Millisecond
)

// starvedShare: an attempt during which the soak process could not run for at least this
// share of probeTimeout measured the emulated guest's starvation, not the path: it is
// reported as starved, not failed.
const starvedShare = 2

// stall is a span of time in which the soak process did not run.
type stall struct{ from, to time.Time }

// stallWatch records the soak process's stalls: in the emulated guest on a loaded host, the
// whole guest (the probes' clients, the pods' servers and the kernel between them) can stop
// for seconds, which a probe's two-second timeout cannot tell from a broken path.
type stallWatch struct {
	mu     sync.Mutex
	stalls []stall
}

func (w *stallWatch) run(ctx context.Context) {
	tick := time.NewTicker(stallTick)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		if now.Sub(last) > stallMin {
			w.mu.Lock()
			w.stalls = append(w.stalls, stall{from: last, to: now})
			w.mu.Unlock()
		}
		last = now
	}
}

// stalledIn returns how long the soak process was stalled within [from, to).
func (w *stallWatch) stalledIn(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var sum time.Duration
	for _, s := range w.stalls {
		a, b := s.from, s.to
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			sum += b.Sub(a)
		}
	}
	return sum
}

// summary is the number of stalls, the longest and their sum.
func (w *stallWatch) summary() (n int, longest, total time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.stalls {
		d := s.to.Sub(s.from)
		longest = max(longest, d)
		total += d
	}
	return len(w.stalls), longest, total
}

// starved reports whether attempt a measured the guest's starvation rather than its path.
func (w *stallWatch) starved(a attempt) bool {
	return w.stalledIn(a.start, a.end)*starvedShare >= probeTimeout
}

// syncLine is one sync the proxier logged.
type syncLine struct {
	at   time.Time
	text string
}

// proxierSyncs reads the soak proxiers' logs (one per start) for their syncs and starts.
func proxierSyncs(logDir string) []syncLine {
	paths, _ := filepath.Glob(filepath.Join(logDir, "kubevs-proxier-soak-*.log"))
	var out []syncLine
	year := time.Now().Year()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if !strings.Contains(l, "sync\"") && !strings.Contains(l, "Starting kubevs-proxier") &&
				!strings.HasPrefix(l, "E") && !strings.HasPrefix(l, "W") {
				continue
			}
			// klog: Lmmdd hh:mm:ss.uuuuuu ...
			if len(l) < 21 {
				continue
			}
			at, err := time.ParseInLocation("2006 0102 15:04:05.000000", fmt.Sprintf("%d %s", year, l[1:21]), time.Local)
			if err != nil {
				continue
			}
			out = append(out, syncLine{at: at, text: filepath.Base(p) + ": " + l})
		}
		_ = f.Close()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// explain describes what surrounded a failed attempt: the soak's own stalls, the last fault
// window before it and the proxier's log lines from 5 s before it to its end.
func (s *soak) explain(a attempt, syncs []syncLine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "attempt %s-%s (%s): soak process stalled %s of it",
		a.start.Format("15:04:05.000"), a.end.Format("15:04:05.000"), a.end.Sub(a.start).Round(time.Millisecond),
		s.stalls.stalledIn(a.start, a.end).Round(time.Millisecond))
	var last *faultResult
	for i := range s.results {
		if s.results[i].to.Before(a.start) {
			last = &s.results[i]
		}
	}
	if last != nil {
		fmt.Fprintf(&b, "; %s after fault %d (%s) window closed", a.start.Sub(last.to).Round(time.Millisecond), last.n, last.name)
	}
	for _, l := range syncs {
		if l.at.After(a.start.Add(-5*time.Second)) && l.at.Before(a.end) {
			fmt.Fprintf(&b, "\n      %s", l.text)
		}
	}
	return b.String()
}
