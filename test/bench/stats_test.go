package bench

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	msd := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	for _, tc := range []struct {
		name     string
		seen     []time.Duration
		timeouts int
		want     Latencies
	}{
		{"none", nil, 0, Latencies{}},
		{"one", msd(7), 0, Latencies{Count: 1, P50MS: 7, P90MS: 7, P99MS: 7, MaxMS: 7}},
		{"nearest rank of 1..100", msd(hundred...), 0, Latencies{Count: 100, P50MS: 50, P90MS: 90, P99MS: 99, MaxMS: 100}},
		{"ten", msd(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), 0, Latencies{Count: 10, P50MS: 5, P90MS: 9, P99MS: 10, MaxMS: 10}},
		{"timeouts raise max to the timeout", msd(1, 2), 1, Latencies{Count: 3, Timeouts: 1, P50MS: 1, P90MS: 2, P99MS: 2, MaxMS: 60000}},
		{"all timed out", nil, 2, Latencies{Count: 2, Timeouts: 2, MaxMS: 60000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Summarize(tc.seen, tc.timeouts, time.Minute)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummarizeDoesNotReorderInput(t *testing.T) {
	in := []time.Duration{3, 1, 2}
	Summarize(in, 0, time.Second)
	if diff := cmp.Diff([]time.Duration{3, 1, 2}, in); diff != "" {
		t.Errorf("input changed (-want +got):\n%s", diff)
	}
}
