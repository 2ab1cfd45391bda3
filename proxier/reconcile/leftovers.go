package reconcile

import (
	"context"

	"k8s.io/klog/v2"
)

// removeKubeProxyTables deletes the nftables tables kube-proxy's nftables mode leaves on a
// node (netfilter.KubeProxyNFTable), once, after the first Resync has written kubevs's rules
// and converged the virtual servers. Until then they keep Services answering through the
// endpoints kube-proxy last saw; from then on they would hide IPVS for ever (their DNAT runs
// before IPVS sees a packet). Flows they already translated keep their conntrack entries.
// A failure is logged and retried at the next Resync; Kernel.NFTables nil skips it.
func (r *Reconciler) removeKubeProxyTables(ctx context.Context) {
	if r.k.NFTables == nil || r.kubeProxyTablesGone {
		return
	}
	logger := klog.FromContext(ctx)
	removed, err := r.k.NFTables.RemoveKubeProxyTables()
	if err != nil {
		logger.Error(err, "Cannot remove kube-proxy's nftables tables; retrying at the next resync")
		return
	}
	r.kubeProxyTablesGone = true
	if len(removed) > 0 {
		logger.Info("Removed the nftables tables kube-proxy's nftables mode left, now that kubevs's rules and virtual servers are in place", "tables", removed)
	}
}
