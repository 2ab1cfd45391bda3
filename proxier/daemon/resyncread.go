package daemon

import (
	"context"
)

// readForResync is the runner's Read: before each periodic resync it reads the kernel for
// it (reconcile.Reading: the fixed rules, addresses, set members, virtual and real servers)
// holding kmu only to begin (for a full read, a copy of the Services the reconciler holds),
// and compares it with those Services, so partial syncs go on while it reads and compares. The periodic sync
// then takes in, under kmu, the Services changed since and repairs only what differs (sync,
// ResyncReadDelta, reconcile/plan.go); after a clean probe, only the Services the full sync
// computed again are compared. The read's time is kubevs_resync_read_duration_seconds;
// the repair's, kubevs_sync_duration_seconds{mode="full"}; kubevs_resync_reads_total{kind}
// counts full reads and probes (reconcile/probe.go).
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
	if rd.NeedsServices() {
		// A probe that found a difference read everything: it compares that with a copy
		// of the Services taken now, and without kmu.
		d.kmu.Lock()
		d.reconciler.CopyServices(rd)
		d.kmu.Unlock()
		rd.Plan()
	}
	d.metrics.ResyncReadDuration.Observe(d.clock.Since(start).Seconds())
	if kind := rd.Kind(); kind != "" {
		d.metrics.ResyncReads.WithLabelValues(kind).Inc()
	}
	d.kmu.Lock()
	d.reading = rd
	d.kmu.Unlock()
}
