package daemon

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/reconcile"
)

// reliability is what the daemon last exported of the reconciler's drift and quarantine
// totals, so the counters grow by the difference.
type reliability struct {
	drift       reconcile.Drift
	quarantines map[string]int
}

// observeReliability exports the reconciler's drift repairs, quarantines and degraded
// start steps; kmu must be held.
func (d *Daemon) observeReliability() {
	if d.reconciler == nil {
		return
	}
	dr := d.reconciler.Drift()
	last := d.rel.drift
	for obj, n := range map[string]int{
		"rules_tables":    dr.Rules - last.Rules,
		"sets":            dr.Sets - last.Sets,
		"set_entries":     dr.SetMembers - last.SetMembers,
		"vips":            dr.Addresses - last.Addresses,
		"virtual_servers": dr.VirtualServers - last.VirtualServers,
	} {
		if n > 0 {
			d.metrics.DriftRepaired.WithLabelValues(obj).Add(float64(n))
		}
	}
	d.rel.drift = dr
	qs := d.reconciler.Quarantines()
	for reason, n := range qs {
		if diff := n - d.rel.quarantines[reason]; diff > 0 {
			d.metrics.Quarantines.WithLabelValues(reason).Add(float64(diff))
		}
	}
	d.rel.quarantines = qs
	now := map[string]int{}
	for _, q := range d.reconciler.Quarantined() {
		now[q.Reason]++
	}
	for reason := range qs {
		d.metrics.ObjectsQuarantined.WithLabelValues(reason).Set(float64(now[reason]))
	}
	d.metrics.Degraded.Reset()
	for _, dg := range d.reconciler.Degraded() {
		d.metrics.Degraded.WithLabelValues(dg.Step).Set(1)
	}
}

// retryQuarantined retries the quarantined virtual servers whose delay is over; kmu must be
// held. A retry that fails again is no error (the virtual server stays quarantined).
func (d *Daemon) retryQuarantined(ctx context.Context) {
	if !d.started || !d.reconciler.RetryDue() {
		return
	}
	if err := d.reconciler.RetryQuarantined(ctx); err != nil {
		klog.FromContext(ctx).Error(err, "Retrying quarantined virtual servers")
	}
	d.observeReliability()
}
