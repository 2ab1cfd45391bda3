package reconcile

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// drainFixture starts a reconciler with a drain file over web3, drains 10.244.2.7 (with
// connections that never end) and returns the fakes and the reconciler's options.
func drainFixture(t *testing.T) (*fakes, Options) {
	t.Helper()
	f := newFakes()
	o := Options{Desired: testOpts, DrainTimeout: time.Minute, Now: func() time.Time { return f.now },
		DrainFile: filepath.Join(t.TempDir(), "state", "drains.json")}
	r := New(f.kernel(), o)
	c := ctx(t)
	must(t, r.Start(c))
	must(t, r.Resync(c, all(t, web3)))
	must(t, r.Apply(c, changes(t, web)))
	must(t, f.ipvs.SetConns(mustKey("TCP:10.96.0.10:80"), mustAP("10.244.2.7:8080"), 3, 1))
	f.reset()
	return f, o
}

// A restart during a drain keeps the drain's deadline: the real server goes at the
// original deadline, not a full period after the restart.
func TestDrainDeadlineSurvivesRestart(t *testing.T) {
	f, o := drainFixture(t)
	c := ctx(t)
	f.now = f.now.Add(30 * time.Second)
	r2 := New(f.kernel(), o)
	must(t, r2.Start(c))
	must(t, r2.Resync(c, all(t, web)))
	f.checkOps(t, "restart in the middle of the drain", nil)
	if r2.Draining() != 1 {
		t.Fatalf("draining %d after the restart, want 1", r2.Draining())
	}
	f.now = f.now.Add(29 * time.Second) // 59 s after the drain began
	must(t, r2.FinishDrains(c))
	f.checkOps(t, "before the original deadline", nil)
	f.now = f.now.Add(2 * time.Second) // 61 s
	must(t, r2.FinishDrains(c))
	f.checkOps(t, "at the original deadline", []string{"delete-rs TCP:10.96.0.10:80 10.244.2.7:8080"})

	// The record follows: nothing drains any more.
	data, err := os.ReadFile(o.DrainFile)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("{\n  \"version\": 1,\n  \"drains\": []\n}\n", string(data)); diff != "" {
		t.Errorf("drain file after the drain (-want +got):\n%s", diff)
	}
}

// A restart after the recorded deadline passed deletes the real server with the first
// resync; one with no record (a file from an older kubevs lost) gets a full period.
func TestDrainDeadlinePassedDuringRestart(t *testing.T) {
	f, o := drainFixture(t)
	c := ctx(t)
	data, err := os.ReadFile(o.DrainFile)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": 1,
  "drains": [
    {
      "protocol": "TCP",
      "address": "10.96.0.10",
      "port": 80,
      "realServer": "10.244.2.7:8080",
      "deadline": "2026-01-01T00:01:00Z"
    }
  ]
}
`
	if diff := cmp.Diff(want, string(data)); diff != "" {
		t.Fatalf("drain file (-want +got):\n%s", diff)
	}
	f.now = f.now.Add(90 * time.Second)
	r2 := New(f.kernel(), o)
	must(t, r2.Start(c))
	must(t, r2.Resync(c, all(t, web)))
	f.checkOps(t, "restart after the deadline", []string{"delete-rs TCP:10.96.0.10:80 10.244.2.7:8080"})

	// No record: a full period from the restart.
	f2, o2 := drainFixture(t)
	must(t, os.Remove(o2.DrainFile))
	f2.now = f2.now.Add(90 * time.Second)
	r3 := New(f2.kernel(), o2)
	must(t, r3.Start(c))
	must(t, r3.Resync(c, all(t, web)))
	f2.checkOps(t, "restart without a record", nil)
	f2.now = f2.now.Add(59 * time.Second)
	must(t, r3.FinishDrains(c))
	f2.checkOps(t, "within a full period of the restart", nil)
}
