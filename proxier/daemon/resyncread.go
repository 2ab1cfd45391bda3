package daemon

import (
	"context"
)

// readForResync is the runner's Read: before each periodic resync it reads the kernel for
// it (reconcile.Reading: the fixed rules, addresses, set members, virtual and real servers)
// holding kmu only to begin, so partial syncs go on while it reads. The periodic sync then
// repairs, under kmu, what the read found different (sync, ResyncRead).
func (d *Daemon) readForResync(ctx context.Context) {
	d.kmu.Lock()
	if !d.started {
		d.kmu.Unlock()
		return
	}
	rd := d.reconciler.BeginRead()
	d.kmu.Unlock()
	rd.Run(ctx)
	d.kmu.Lock()
	d.reading = rd
	d.kmu.Unlock()
}
