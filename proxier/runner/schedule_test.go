package runner

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one event applied to a schedule: "run" (Run called), "sync ok"/"sync fail" (a due
// sync at the current time), or a time advance.
type step struct {
	at    time.Duration // time since t0 of the event
	event string
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		// want lists, after each step, "next=<offset> due=<reason|->".
		want []string
	}{
		{
			name:  "idle runner syncs once per max interval",
			steps: []step{{0, "tick"}, {30 * time.Second, "sync ok"}, {59 * time.Second, "tick"}},
			want:  []string{"next=30s due=-", "next=1m0s due=-", "next=1m0s due=-"},
		},
		{
			name:  "a request runs after the min interval",
			steps: []step{{0, "run"}, {time.Second, "sync ok"}, {1500 * time.Millisecond, "run"}, {2 * time.Second, "tick"}},
			want:  []string{"next=1s due=-", "next=31s due=-", "next=2s due=-", "next=2s due=requested"},
		},
		{
			name:  "requests collapse into one sync",
			steps: []step{{0, "run"}, {100 * time.Millisecond, "run"}, {time.Second, "sync ok"}},
			want:  []string{"next=1s due=-", "next=1s due=-", "next=31s due=-"},
		},
		{
			name:  "a late request runs at once",
			steps: []step{{10 * time.Second, "run"}},
			want:  []string{"next=1s due=requested"},
		},
		{
			name: "failures back off exponentially up to the max interval",
			steps: []step{
				{time.Second, "run"}, {time.Second, "sync fail"},
				{3 * time.Second, "sync fail"}, {7 * time.Second, "sync fail"},
				{15 * time.Second, "sync fail"}, {31 * time.Second, "sync fail"},
				{61 * time.Second, "sync fail"}, {91 * time.Second, "sync ok"},
			},
			want: []string{
				"next=1s due=requested", "next=3s due=-",
				"next=7s due=-", "next=15s due=-",
				"next=31s due=-", "next=1m1s due=-",
				"next=1m31s due=-", "next=2m1s due=-",
			},
		},
		{
			name:  "a request during backoff waits for the retry",
			steps: []step{{time.Second, "run"}, {time.Second, "sync fail"}, {1100 * time.Millisecond, "run"}, {3 * time.Second, "tick"}},
			want:  []string{"next=1s due=requested", "next=3s due=-", "next=3s due=-", "next=3s due=retry"},
		},
		{
			name:  "periodic wins over a request",
			steps: []step{{31 * time.Second, "run"}},
			want:  []string{"next=1s due=periodic"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := schedule{min: time.Second, max: 30 * time.Second, retryBase: 2 * time.Second, retryMax: 30 * time.Second, lastRun: t0}
			var got []string
			for _, st := range tt.steps {
				now := t0.Add(st.at)
				switch st.event {
				case "run":
					s.pending = true
				case "sync ok", "sync fail":
					if _, ok := s.due(now); !ok {
						t.Fatalf("at %v: sync not due (next %v)", st.at, s.next().Sub(t0))
					}
					s.started(now)
					var err error
					if st.event == "sync fail" {
						err = errors.New("boom")
					}
					s.finished(err)
				}
				due := "-"
				if why, ok := s.due(now); ok {
					due = why.String()
				}
				got = append(got, fmt.Sprintf("next=%v due=%s", s.next().Sub(t0), due))
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
