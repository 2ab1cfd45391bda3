package reconcile

import (
	"context"

	"k8s.io/klog/v2"
)

// Drift counts what Resync found changed behind kubevs's back and put back: someone else's
// `iptables -F KUBE-...` or firewall reload (Rules: tables rewritten), `ipset destroy`
// (Sets: sets created again), `ipset flush` (SetMembers), `ip addr del` or the deletion of
// the dummy link (Addresses), `ipvsadm -C` (VirtualServers). Only what the Reconciler had
// programmed (or adopted) and then found gone counts; Start's own work never does.
type Drift struct {
	Rules, Sets, SetMembers, Addresses, VirtualServers int
}

// IsZero reports whether nothing drifted.
func (d Drift) IsZero() bool { return d == Drift{} }

func (d *Drift) add(o Drift) {
	d.Rules += o.Rules
	d.Sets += o.Sets
	d.SetMembers += o.SetMembers
	d.Addresses += o.Addresses
	d.VirtualServers += o.VirtualServers
}

// Drift returns the totals since New of what Resync repaired, for metrics.
func (r *Reconciler) Drift() Drift { return r.drift }

// lost compares the model before a re-read of the kernel (prev) with what the kernel now
// holds (r.m): the objects kubevs had that are gone.
func (r *Reconciler) lost(prev *model) Drift {
	var d Drift
	for a := range prev.vips.all() {
		if !r.m.vips.has(a) {
			d.Addresses++
		}
	}
	for e := range prev.entries.all() {
		if !r.m.entries.has(e) {
			d.SetMembers++
		}
	}
	for k := range prev.vs {
		if _, ok := r.m.vs[k]; !ok {
			d.VirtualServers++
		}
	}
	return d
}

// noteDrift adds d to the totals and logs it once per Resync that found any.
func (r *Reconciler) noteDrift(ctx context.Context, d Drift, tables []string) {
	if d.IsZero() {
		return
	}
	r.drift.add(d)
	klog.FromContext(ctx).Info("Repairing kernel state changed by someone else",
		"rulesTables", tables, "sets", d.Sets, "setMembers", d.SetMembers, "addresses", d.Addresses, "virtualServers", d.VirtualServers)
}
