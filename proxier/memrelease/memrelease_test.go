package memrelease

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

const mib = 1 << 20

// fake returns a Releaser reading *s, counting its releases in *n and the bytes it
// reports in *b.
func fake(s *Stats, n *int, b *uint64, clk *clocktesting.FakeClock) *Releaser {
	r := New(Options{Released: func(r uint64) { *b += r }}, clk)
	r.read = func() Stats { return *s }
	r.release = func() { *n++; s.Free, s.Objects = 0, s.Live }
	return r
}

// TestCheckReleasesAboveAShareOfTheLiveHeap: a release needs 16 MiB reclaimable and an
// eighth of the live heap, counting free memory and the garbage since the collection, and
// less allocated since the last look than it would give back (a busy proxier would fault
// it in again at once). The first look only takes the allocation count.
func TestCheckReleasesAboveAShareOfTheLiveHeap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		s         Stats
		allocated uint64 // since the first look
		want      bool
	}{
		{"nothing to give", Stats{Live: 100 * mib, Objects: 100 * mib}, 0, false},
		{"a small heap's few MiB", Stats{Live: 10 * mib, Free: 10 * mib, Objects: 15 * mib}, 0, false},
		{"16 MiB of a small heap", Stats{Live: 10 * mib, Free: 10 * mib, Objects: 16 * mib}, 0, true},
		{"16 MiB of 400 MiB live", Stats{Live: 400 * mib, Free: 16 * mib, Objects: 400 * mib}, 0, false},
		{"an eighth of 400 MiB live", Stats{Live: 400 * mib, Free: 30 * mib, Objects: 420 * mib}, 0, true},
		{"free memory alone", Stats{Live: 120 * mib, Free: 120 * mib, Objects: 120 * mib}, 0, true},
		{"garbage alone", Stats{Live: 120 * mib, Objects: 240 * mib}, 0, true},
		{"objects below live (swept since)", Stats{Live: 120 * mib, Free: 10 * mib, Objects: 100 * mib}, 0, false},
		{"idle: allocated a little", Stats{Live: 120 * mib, Free: 120 * mib, Objects: 120 * mib}, 5 * mib, true},
		{"steady changes: allocated as much as it gives", Stats{Live: 120 * mib, Free: 100 * mib, Objects: 140 * mib}, 120 * mib, true},
		{"busy: allocated more than it would give", Stats{Live: 120 * mib, Free: 100 * mib, Objects: 140 * mib}, 121 * mib, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, n, b := tc.s, 0, uint64(0)
			s.Allocs = 1 << 40
			r := fake(&s, &n, &b, clocktesting.NewFakeClock(time.Now()))
			if r.Check(context.Background()) || n != 0 {
				t.Fatal("the first look released memory")
			}
			s.Allocs += tc.allocated
			if got := r.Check(context.Background()); got != tc.want || n != map[bool]int{true: 1}[tc.want] {
				t.Errorf("Check = %t with %d releases, want %t", got, n, tc.want)
			}
			if want := map[bool]uint64{true: tc.s.Reclaimable()}[tc.want]; b != want {
				t.Errorf("Released told of %d bytes, want %d", b, want)
			}
		})
	}
}

// TestRunLooksEveryInterval: Run looks once an Interval, releases only what is worth it,
// and returns when its context ends.
func TestRunLooksEveryInterval(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	s, n, b := Stats{Live: 100 * mib, Objects: 100 * mib}, 0, uint64(0)
	r := fake(&s, &n, &b, clk)
	looks := make(chan Stats, 10)
	read := r.read
	r.read = func() Stats { v := read(); looks <- v; return v }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	step := func() Stats {
		t.Helper()
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		clk.Step(100 * time.Second)
		select {
		case v := <-looks:
			return v
		case <-time.After(10 * time.Second):
			t.Fatal("no look after an interval")
		}
		return Stats{}
	}
	step()
	if n != 0 {
		t.Fatalf("%d releases with nothing to give", n)
	}
	s.Free = 50 * mib // a burst's memory, freed by a collection
	step()
	step()
	if n != 1 {
		t.Fatalf("%d releases, want 1 (the second look finds nothing left)", n)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func released() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var sink []byte

// TestReleaseGivesTheRuntimesMemoryBack, with the real runtime: 256 MiB freed by a
// collection are reclaimable; a Check gives them back to the operating system.
func TestReleaseGivesTheRuntimesMemoryBack(t *testing.T) {
	sink = make([]byte, 256*mib)
	for i := 0; i < len(sink); i += 4096 {
		sink[i] = 1 // resident
	}
	sink = nil
	runtime.GC()
	s := ReadStats()
	if s.Reclaimable() < 128*mib {
		t.Fatalf("after freeing 256 MiB, %d MiB reclaimable (%+v)", s.Reclaimable()/mib, s)
	}
	before := released()
	r := New(Options{}, clocktesting.NewFakeClock(time.Now()))
	r.Check(context.Background()) // the first look: the allocation count
	if !r.Check(context.Background()) {
		t.Fatalf("Check did not release %d MiB reclaimable", s.Reclaimable()/mib)
	}
	if after := ReadStats(); after.Free > 16*mib {
		t.Errorf("after the release the runtime keeps %d MiB free", after.Free/mib)
	}
	if got := released() - before; got < 128*mib {
		t.Errorf("the release gave back %d MiB, want at least 128", got/mib)
	}
}
