// Package memrelease gives the operating system back the heap memory the proxier freed.
//
// The Go runtime keeps the pages it freed mapped up to its next collection goal, twice the
// live heap by default: after a cold sync or a burst of changes a proxier holding 120 MB
// of live heap stays at about 250 MB resident for good, although it is idle. A Releaser
// looks every Interval and, when the freed memory the runtime keeps (and the garbage since
// the last collection) reaches a share of the live heap, collects and returns it
// (debug.FreeOSMemory), unless the proxier allocated more than that since the last look:
// busy (a cold sync, a burst), it would need the memory again within the interval. Its
// Interval is shorter than the runtime's forced collection every two minutes, which a
// release postpones; still, a release is a collection: at 50,000 Services in the emulated
// test VM the idle proxier's collections took 5.0 s of CPU in 5 minutes, 3.4 s without
// releases, for an RSS of 235 MiB instead of 311 (make bench-e2e, 8 Dec).
package memrelease

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/kubevs/kubevs/proxier/internal/tick"
)

// Stats are the runtime's heap figures a Releaser decides on, in bytes.
type Stats struct {
	// Live is the heap the last collection found live.
	Live uint64
	// Free is freed heap memory the runtime keeps mapped (resident, as far as it knows).
	Free uint64
	// Objects are the heap objects, live and dead, not yet freed.
	Objects uint64
	// Allocs counts the bytes allocated on the heap since the process started.
	Allocs uint64
}

// Reclaimable is what a collection and release would give back, about: the free memory
// and the garbage allocated since the last collection.
func (s Stats) Reclaimable() uint64 {
	r := s.Free
	if s.Objects > s.Live {
		r += s.Objects - s.Live
	}
	return r
}

var sampleNames = []string{"/gc/heap/live:bytes", "/memory/classes/heap/free:bytes", "/memory/classes/heap/objects:bytes", "/gc/heap/allocs:bytes"}

// ReadStats reads the Stats of this process's runtime.
func ReadStats() Stats {
	samples := make([]metrics.Sample, len(sampleNames))
	for i, n := range sampleNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	v := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return samples[i].Value.Uint64()
	}
	return Stats{Live: v(0), Free: v(1), Objects: v(2), Allocs: v(3)}
}

// Options tune a Releaser; zero values take the defaults.
type Options struct {
	// Interval between two looks. Default 100s.
	Interval time.Duration
	// MinBytes: less reclaimable memory than this is never worth a collection. Default
	// 16 MiB.
	MinBytes uint64
	// LiveShare: a release needs reclaimable memory of at least Live/LiveShare as well.
	// Default 8.
	LiveShare uint64
	// Released, when not nil, is told of each release and the bytes found reclaimable.
	Released func(reclaimable uint64)
}

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = 100 * time.Second
	}
	if o.MinBytes == 0 {
		o.MinBytes = 16 << 20
	}
	if o.LiveShare == 0 {
		o.LiveShare = 8
	}
	return o
}

// Releaser returns freed heap memory to the operating system (see the package doc).
type Releaser struct {
	opts  Options
	clock clock.WithTicker
	// read and release are the runtime's, replaced in tests.
	read    func() Stats
	release func()
	// allocs is Stats.Allocs at the last look; looked is false before the first.
	allocs uint64
	looked bool
}

// New returns a Releaser for this process.
func New(opts Options, clk clock.WithTicker) *Releaser {
	return &Releaser{opts: opts.withDefaults(), clock: clk, read: ReadStats, release: debug.FreeOSMemory}
}

// Check releases memory if enough is reclaimable and the proxier allocated less than that
// since the last Check (the first Check has nothing to compare with and releases nothing),
// and reports whether it did.
func (r *Releaser) Check(ctx context.Context) bool {
	s := r.read()
	allocated, first := s.Allocs-r.allocs, !r.looked
	r.allocs, r.looked = s.Allocs, true
	need := max(r.opts.MinBytes, s.Live/r.opts.LiveShare)
	if first || s.Reclaimable() < need || allocated > s.Reclaimable() {
		return false
	}
	start := r.clock.Now()
	r.release()
	if r.opts.Released != nil {
		r.opts.Released(s.Reclaimable())
	}
	klog.FromContext(ctx).V(3).Info("Released freed heap memory", "reclaimable", s.Reclaimable(), "live", s.Live, "took", r.clock.Since(start))
	return true
}

// Run checks every Interval until ctx is done.
func (r *Releaser) Run(ctx context.Context) {
	tick.Every(ctx, r.clock, r.opts.Interval, func(ctx context.Context) { r.Check(ctx) })
}
