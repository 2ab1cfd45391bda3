package reconcile

// route_localnet is set only together with the localnet guard (ensureLocalnet), and never
// left behind without it. The guard is a fixed rule: options without loopback NodePort
// addresses (a new configuration after a restart, or new options in this process) take it
// out of the kernel, while the sysctl, a plain kernel parameter, would stay 1 and let a
// neighbour reach services bound to 127.0.0.1 (CVE-2020-8558). withdrawLocalnet turns it
// back first.

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
)

// withdrawLocalnet restores route_localnet to its value before kubevs when the options in
// r.global do not want it and kubevs set it: in this process (SysctlChanges) or in an
// earlier one (Options.Recorded). A value someone changed since is left alone
// (RestoreSysctls). Call it before the rules lose the guard. A failure is logged: it
// leaves the node as the earlier run did.
func (r *Reconciler) withdrawLocalnet(ctx context.Context) {
	for _, s := range r.global.Sysctls {
		if s.Name == desired.RouteLocalnetSysctl {
			return // wanted: ensureLocalnet keeps it, with its guard
		}
	}
	var mine []SysctlChange
	for _, c := range append(append([]SysctlChange(nil), r.opts.Recorded...), r.changed...) {
		if c.Name == desired.RouteLocalnetSysctl {
			mine = append(mine, c)
		}
	}
	if len(mine) == 0 {
		return
	}
	logger := klog.FromContext(ctx)
	before, _ := r.k.Sysctl.Get(desired.RouteLocalnetSysctl)
	if err := RestoreSysctls(r.k.Sysctl, mine); err != nil {
		logger.Error(err, "Cannot turn route_localnet back now that no NodePort is on loopback; its guard rule is gone", "sysctl", desired.RouteLocalnetSysctl)
		return
	}
	if after, _ := r.k.Sysctl.Get(desired.RouteLocalnetSysctl); after != before {
		logger.Info("Turned route_localnet back: no NodePort address is on loopback any more", "sysctl", desired.RouteLocalnetSysctl, "value", after)
	}
}
