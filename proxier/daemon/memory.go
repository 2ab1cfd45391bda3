package daemon

import (
	"context"

	"k8s.io/utils/clock"

	"github.com/kubevs/kubevs/proxier/memrelease"
)

// releaseMemory gives the heap memory the proxier freed back to the operating system, on
// memrelease's schedule, until ctx is done: after the cold sync or a burst of changes, an
// idle proxier's RSS then follows its live heap, not twice it. The memory is the
// process's, so the releaser keeps real time whatever the Daemon's clock.
func (d *Daemon) releaseMemory(ctx context.Context) {
	memrelease.New(memrelease.Options{Released: func(reclaimable uint64) {
		d.metrics.MemoryReleases.Inc()
		d.metrics.MemoryReleasedBytes.Add(float64(reclaimable))
	}}, clock.RealClock{}).Run(ctx)
}
