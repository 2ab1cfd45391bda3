package daemon

import (
	"context"
)

// readForResync is the runner's Read: before each periodic resync it reads the kernel for
// it (reconcile.Reading: the fixed rules, addresses, set members, virtual and real servers)
// holding kmu only to begin, so partial syncs go on while it reads. The periodic sync then
// repairs, under kmu, what the read found different (sync, ResyncRead). The read's time is
// kubevs_resync_read_duration_seconds; the repair's, kubevs_sync_duration_seconds{mode="full"}.
func (d *Daemon) readForResync(ctx context.Context) {
	d.kmu.Lock()
	if !d.started {
		d.kmu.Unlock()
		return
	}
	rd := d.reconciler.BeginRead()
	d.kmu.Unlock()
	start := d.clock.Now()
	rd.Run(ctx)
	d.metrics.ResyncReadDuration.Observe(d.clock.Since(start).Seconds())
	d.kmu.Lock()
	d.reading = rd
	d.kmu.Unlock()
}
