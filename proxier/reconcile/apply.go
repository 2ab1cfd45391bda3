package reconcile

import (
	"context"
	"errors"
	"net/netip"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
)

// Start prepares the kernel and adopts what it already holds: it ensures the dummy link,
// the sysctls, the owned sets and the fixed iptables rules, then reads the owned virtual
// servers, addresses and set members into the Reconciler's model. It flushes nothing: what
// is already right stays as it is (weights included). Call it once, after the informers
// synced, then Resync with every Service.
func (r *Reconciler) Start(ctx context.Context) error {
	return errors.New("reconcile: Start not implemented yet")
}

// Apply converges the changed Services only: a nil value means the Service is gone (or
// ignored). The cost is proportional to the changed Services, never to all of them. It
// goes on past a failing object and returns every failure joined, each naming its object;
// the caller should then Resync, which re-reads the kernel and converges.
func (r *Reconciler) Apply(ctx context.Context, changed map[types.NamespacedName]*desired.Service) error {
	return errors.New("reconcile: Apply not implemented yet")
}

// Resync re-reads what the kernel holds and converges it to all, the complete set of
// Services: Services absent from all are removed, and owned objects no Service wants
// (virtual servers, addresses, set members) are deleted. Use it for the first sync after
// Start, periodically, and after a failed Apply.
func (r *Reconciler) Resync(ctx context.Context, all map[types.NamespacedName]desired.Service) error {
	return errors.New("reconcile: Resync not implemented yet")
}

// FinishDrains deletes the draining real servers whose connections have all ended or whose
// drain time is over. It reads only the virtual servers that have draining real servers.
func (r *Reconciler) FinishDrains(ctx context.Context) error {
	return nil
}

// Cleanup removes exactly what kubevs owns, in both families: the owned virtual servers
// (address bound to the dummy link and not in excludeCIDRs), the dummy link, the KUBE-*
// chains and jumps, then the owned sets. Sysctls are left as they are (turning forwarding
// off would break the node's pod network); SysctlChanges tells what Start changed. Absent
// objects are not an error, so Cleanup may run any number of times.
func Cleanup(ctx context.Context, k Kernel, excludeCIDRs []netip.Prefix) error {
	return errors.New("reconcile: Cleanup not implemented yet")
}
