package runner

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const ms = time.Millisecond

// step is one event applied to a schedule at time at (since t0): "run" (Run called), "tick"
// (nothing happens), or a due sync that starts at at and lasts took: "sync" (succeeds; full
// when its reason asks for one), with "full" (a request the sync function made full),
// "busy" (Run is called while it runs) or "fail" (it fails).
type step struct {
	at    time.Duration
	event string
	took  time.Duration
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		name string
		min  time.Duration // default 1s; -1 for zero
		// steps are applied in order.
		steps []step
		// want lists, after each step, "[ran=<reason> ]next=<offset> due=<reason|->" with
		// due evaluated at the end of the step.
		want []string
	}{
		{
			name:  "an idle runner syncs once per max interval",
			steps: []step{{0, "tick", 0}, {30 * time.Second, "sync", 2 * time.Second}, {59 * time.Second, "tick", 0}, {time.Minute, "tick", 0}},
			want:  []string{"next=30s due=-", "ran=periodic next=1m0s due=-", "next=1m0s due=-", "next=1m0s due=periodic"},
		},
		{
			name:  "the first request runs at once",
			steps: []step{{0, "run", 0}},
			want:  []string{"next=0s due=requested"},
		},
		{
			name:  "a request on an idle runner runs at once, however soon after the last sync",
			steps: []step{{0, "run", 0}, {0, "sync", 100 * ms}, {101 * ms, "run", 0}},
			want:  []string{"next=0s due=requested", "ran=requested next=30s due=-", "next=100ms due=requested"},
		},
		{
			name: "a request made during a sync waits CostFactor times its duration",
			steps: []step{
				{0, "run", 0}, {0, "sync busy", 100 * ms}, {499 * ms, "tick", 0}, {500 * ms, "sync", 50 * ms},
				{560 * ms, "run", 0},
			},
			want: []string{
				"next=0s due=requested", "ran=requested next=500ms due=-", "next=500ms due=-", "ran=requested next=30s due=-",
				"next=550ms due=requested",
			},
		},
		{
			name:  "the coalescing delay never exceeds the min interval",
			steps: []step{{0, "run", 0}, {0, "sync busy", 2 * time.Second}, {3 * time.Second, "tick", 0}},
			want:  []string{"next=0s due=requested", "ran=requested next=3s due=-", "next=3s due=requested"},
		},
		{
			name:  "min interval zero never delays a request",
			min:   -1,
			steps: []step{{0, "run", 0}, {0, "sync busy", 2 * time.Second}},
			want:  []string{"next=0s due=requested", "ran=requested next=2s due=requested"},
		},
		{
			name:  "requests during the delay collapse into one sync",
			steps: []step{{0, "run", 0}, {0, "sync busy", 100 * ms}, {150 * ms, "run", 0}, {200 * ms, "run", 0}, {500 * ms, "sync", 10 * ms}},
			want:  []string{"next=0s due=requested", "ran=requested next=500ms due=-", "next=500ms due=-", "next=500ms due=-", "ran=requested next=30s due=-"},
		},
		{
			name: "a request made during a full sync runs as soon as it ends",
			steps: []step{
				{0, "run", 0}, {0, "sync", 10 * ms}, {time.Second, "run", 0}, {time.Second, "sync full busy", 5 * time.Second},
			},
			want: []string{
				"next=0s due=requested", "ran=requested next=30s due=-", "next=10ms due=requested", "ran=requested next=10ms due=requested",
			},
		},
		{
			name: "partial syncs do not postpone the periodic resync",
			steps: []step{
				{10 * time.Second, "run", 0}, {10 * time.Second, "sync", 10 * ms},
				{20 * time.Second, "run", 0}, {20 * time.Second, "sync", 10 * ms}, {30 * time.Second, "tick", 0},
			},
			want: []string{
				"next=0s due=requested", "ran=requested next=30s due=-",
				"next=10.01s due=requested", "ran=requested next=30s due=-", "next=30s due=periodic",
			},
		},
		{
			name: "a due periodic resync lets a waiting request go first, once",
			steps: []step{
				{30 * time.Second, "run", 0}, {30 * time.Second, "sync busy", 10 * ms},
				{30*time.Second + 10*ms, "sync", 2 * time.Second}, {32*time.Second + 10*ms, "run", 0},
			},
			want: []string{
				"next=0s due=requested", "ran=requested next=30s due=periodic",
				"ran=periodic next=1m0.01s due=-", "next=30.05s due=requested",
			},
		},
		{
			name: "failures back off exponentially up to the max interval",
			steps: []step{
				{time.Second, "run", 0}, {time.Second, "sync fail", 0},
				{3 * time.Second, "sync fail", 0}, {7 * time.Second, "sync fail", 0},
				{15 * time.Second, "sync fail", 0}, {31 * time.Second, "sync fail", 0},
				{61 * time.Second, "sync fail", 0}, {91 * time.Second, "sync", 0},
			},
			want: []string{
				"next=0s due=requested", "ran=requested next=3s due=-",
				"ran=retry next=7s due=-", "ran=retry next=15s due=-",
				"ran=retry next=31s due=-", "ran=retry next=1m1s due=-",
				"ran=retry next=1m31s due=-", "ran=retry next=2m1s due=-",
			},
		},
		{
			name:  "after a failed full sync a request waits for the retry",
			steps: []step{{0, "tick", 0}, {30 * time.Second, "sync fail", time.Second}, {31 * time.Second, "run", 0}, {32 * time.Second, "tick", 0}},
			want:  []string{"next=30s due=-", "ran=periodic next=32s due=-", "next=32s due=-", "next=32s due=retry"},
		},
		{
			name: "after a failed partial sync a request runs at once; neither its success nor its failure moves the retry",
			steps: []step{
				{time.Second, "run", 0}, {time.Second, "sync fail", 0}, {1100 * ms, "run", 0}, {1100 * ms, "sync", 0},
				{1200 * ms, "run", 0}, {1200 * ms, "sync fail", 0}, {3 * time.Second, "tick", 0},
			},
			want: []string{
				"next=0s due=requested", "ran=requested next=3s due=-", "next=1s due=requested", "ran=requested next=3s due=-",
				"next=1.1s due=requested", "ran=requested next=3s due=-", "next=3s due=retry",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			min := time.Second
			if tt.min < 0 {
				min = 0
			}
			s := newSchedule(min, 30*time.Second, 2*time.Second, 30*time.Second, t0)
			var got []string
			for _, st := range tt.steps {
				now := t0.Add(st.at)
				ran := ""
				switch st.event {
				case "run":
					s.pending = true
				case "sync", "sync busy", "sync full busy", "sync fail":
					why, ok := s.due(now)
					if !ok {
						t.Fatalf("at %v: sync not due (next %v)", st.at, s.next().Sub(t0))
					}
					ran = "ran=" + why.String() + " "
					s.started(now, why)
					var err error
					if st.event == "sync fail" {
						err = errors.New("boom")
					}
					now = now.Add(st.took)
					if strings.Contains(st.event, "busy") {
						s.pending = true
					}
					s.finished(now, why != Requested || strings.Contains(st.event, "full"), err)
				case "tick":
				default:
					t.Fatalf("unknown event %q", st.event)
				}
				due := "-"
				if why, ok := s.due(now); ok {
					due = why.String()
				}
				got = append(got, fmt.Sprintf("%snext=%v due=%s", ran, s.next().Sub(t0), due))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("schedule (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoffNeverBelowMin(t *testing.T) {
	s := schedule{min: 5 * time.Second, max: time.Minute, retryBase: time.Second, retryMax: time.Minute, failures: 1}
	if got := s.backoff(); got != 5*time.Second {
		t.Errorf("backoff = %v, want the min interval 5s", got)
	}
}

// TestScheduleWithRead: with a read step (Options.Read), a periodic resync that falls due
// starts its read; requests run meanwhile as partial syncs, at once; the periodic resync is
// due once the read is done. A read that ends after a full sync (a retry) ran is not used.
func TestScheduleWithRead(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name: "requests run while the read runs; the periodic resync after it",
			steps: []step{
				{30 * time.Second, "tick", 0}, {30 * time.Second, "read", 0}, {31 * time.Second, "run", 0},
				{31 * time.Second, "sync", 10 * ms}, {32 * time.Second, "read done", 0}, {32 * time.Second, "sync", time.Second},
			},
			want: []string{
				"next=30s due=- read=due", "next=none due=- read=running", "next=0s due=requested read=running",
				"ran=requested next=none due=- read=running", "next=30s due=periodic read=ready", "ran=periodic next=1m2s due=- read=-",
			},
		},
		{
			name: "a request waiting when the read ends goes first",
			steps: []step{
				{30 * time.Second, "read", 0}, {31 * time.Second, "run", 0}, {31 * time.Second, "read done", 0},
				{31 * time.Second, "sync", 10 * ms}, {31*time.Second + 10*ms, "sync", time.Second},
			},
			want: []string{
				"next=none due=- read=running", "next=0s due=requested read=running", "next=0s due=requested read=ready",
				"ran=requested next=30s due=periodic read=ready", "ran=periodic next=1m1.01s due=- read=-",
			},
		},
		{
			name: "a read that ends after a retry's full sync is not used",
			steps: []step{
				{0, "run", 0}, {0, "sync fail", 10 * ms}, {30 * time.Second, "read", 0},
				{30 * time.Second, "sync", time.Second}, {31 * time.Second, "read done", 0},
			},
			want: []string{
				"next=0s due=requested read=-", "ran=requested next=2s due=- read=-", "next=2s due=retry read=running",
				"ran=retry next=none due=- read=running", "next=1m0s due=- read=-",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSchedule(time.Second, 30*time.Second, 2*time.Second, 30*time.Second, t0)
			s.prep = true
			var got []string
			for _, st := range tt.steps {
				now := t0.Add(st.at)
				ran := ""
				switch st.event {
				case "run":
					s.pending = true
				case "read":
					if !s.readDue(now) {
						t.Fatalf("at %v: read not due", st.at)
					}
					s.startRead()
				case "read done":
					s.readDone(now)
				case "sync", "sync fail":
					why, ok := s.due(now)
					if !ok {
						t.Fatalf("at %v: sync not due (next %v)", st.at, s.next().Sub(t0))
					}
					ran = "ran=" + why.String() + " "
					s.started(now, why)
					var err error
					if st.event == "sync fail" {
						err = errors.New("boom")
					}
					now = now.Add(st.took)
					s.finished(now, why != Requested, err)
				case "tick":
				default:
					t.Fatalf("unknown event %q", st.event)
				}
				due, next, read := "-", "none", "-"
				if why, ok := s.due(now); ok {
					due = why.String()
				}
				if n := s.next(); !n.IsZero() {
					next = n.Sub(t0).String()
				}
				switch {
				case s.reading:
					read = "running"
				case s.ready:
					read = "ready"
				case s.readDue(now):
					read = "due"
				}
				got = append(got, fmt.Sprintf("%snext=%s due=%s read=%s", ran, next, due, read))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("schedule (-want +got):\n%s", diff)
			}
		})
	}
}
