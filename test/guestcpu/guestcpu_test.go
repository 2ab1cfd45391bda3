package guestcpu

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name        string
		text        string
		busy, total uint64
		wantErr     string
	}{
		{name: "all fields", text: "cpu  10 1 5 100 7 2 3 4 0 0\ncpu0 5 0 2 50 3 1 1 2 0 0\n", busy: 10 + 1 + 5 + 2 + 3 + 4, total: 10 + 1 + 5 + 100 + 7 + 2 + 3 + 4},
		{name: "old kernel, four fields", text: "cpu 3 0 1 9\n", busy: 4, total: 13},
		{name: "no cpu line", text: "intr 1 2\n", wantErr: `no "cpu" line`},
		{name: "garbage", text: "cpu 1 x 2 3\n", wantErr: `field 2 "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			busy, total, err := parseStat(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || busy != tc.busy || total != tc.total {
				t.Errorf("parseStat = %d, %d, %v; want %d, %d", busy, total, err, tc.busy, tc.total)
			}
		})
	}
}

func TestParsePidStat(t *testing.T) {
	// A command with a space and a ')' must not shift the fields: utime 700, stime 45.
	line := "1234 (kube apiserver) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 700 45 0 0 20 0 12 0 99 1000 50\n"
	got, err := parsePidStat(line)
	if err != nil || got != 745 {
		t.Errorf("parsePidStat = %d, %v; want 745", got, err)
	}
	if _, err := parsePidStat("1234 (short) S 1 2"); err == nil {
		t.Error("a truncated line gave no error")
	}
}

// TestSelfUsage burns CPU in this process between two real samples: its share must show it,
// and the machine's busy time must cover it.
func TestSelfUsage(t *testing.T) {
	before, err := Take(Self, "no-such-command-x")
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the process has used 0.3 s of CPU (not of wall time: on a loaded machine
	// 0.3 s of wall time may give it far less), bounded by a minute of wall time.
	sum := sha256.Sum256(nil)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && selfSince(t, before) < 0.3; {
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
	}
	after, err := Take(Self, "no-such-command-x")
	if err != nil {
		t.Fatal(err)
	}
	u := after.Since(before)
	if got := u.Procs[Self]; got < 0.25 {
		t.Errorf("self used %.2f CPU-s while spinning for 0.3 CPU-s, want at least 0.25 (%s)", got, u)
	}
	if u.Busy < u.Procs[Self]-0.02 {
		t.Errorf("machine busy %.2f CPU-s < self's %.2f", u.Busy, u.Procs[Self])
	}
	if diff := cmp.Diff(0.0, u.Procs["no-such-command-x"]); diff != "" {
		t.Errorf("a command that runs nowhere used CPU (-want +got):\n%s", diff)
	}
	if s := u.String(); !strings.Contains(s, "self ") || !strings.Contains(s, "busy over") {
		t.Errorf("String() = %q", s)
	}
}

func TestUsageString(t *testing.T) {
	u := Usage{Wall: 10 * time.Second, CPUs: 2, Busy: 18, Procs: map[string]float64{"etcd": 3, "kube-apiserver": 12, Self: 2}}
	want := "2 CPUs 90% busy over 10s: kube-apiserver 1.20 CPUs, etcd 0.30 CPUs, self 0.20 CPUs"
	if diff := cmp.Diff(want, u.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// selfSince is the CPU time, in seconds, the test process used since before.
func selfSince(t *testing.T, before Sample) float64 {
	t.Helper()
	now, err := Take(Self)
	if err != nil {
		t.Fatal(err)
	}
	return now.Since(before).Procs[Self]
}
