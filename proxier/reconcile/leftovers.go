package reconcile

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/netfilter"
)

// removeKubeProxyLeftovers removes what kube-proxy's nftables and iptables modes left, after
// a Resync that wrote kubevs's rules (see removeKubeProxyTables, removeKubeProxyChains).
func (r *Reconciler) removeKubeProxyLeftovers(ctx context.Context) {
	r.removeKubeProxyTables(ctx)
	r.removeKubeProxyChains(ctx)
}

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

// removeKubeProxyChains deletes, once per family, the iptables chains kube-proxy's iptables
// mode leaves that kubevs does not use (netfilter.KubeProxyChain: the per-Service and
// per-endpoint nat chains, KUBE-NODEPORTS, KUBE-EXTERNAL-SERVICES, KUBE-PROXY-CANARY) and
// the jumps to them, after the first Resync has written kubevs's rules and converged the
// virtual servers. By then they carry no traffic: kubevs's rules replaced the chains they
// share a name with (nat KUBE-SERVICES no longer jumps to them). What they would still do is
// filter: KUBE-EXTERNAL-SERVICES rejects the Services that had no endpoints when kube-proxy
// stopped, for ever. A failure is logged and retried at the next Resync;
// Kernel.KubeProxyChains nil skips it.
func (r *Reconciler) removeKubeProxyChains(ctx context.Context) {
	if r.k.KubeProxyChains == nil {
		return
	}
	logger := klog.FromContext(ctx)
	for _, fr := range r.global.Rules {
		if r.kubeProxyChainsGone[fr.Family] {
			continue
		}
		removed, err := r.k.KubeProxyChains.RemoveKubeProxyChains(fr.Family)
		if err != nil {
			logger.Error(err, "Cannot remove kube-proxy's iptables chains; retrying at the next resync", "family", fr.Family)
			continue
		}
		if r.kubeProxyChainsGone == nil {
			r.kubeProxyChainsGone = map[netfilter.Family]bool{}
		}
		r.kubeProxyChainsGone[fr.Family] = true
		if len(removed) > 0 {
			logger.Info("Removed the iptables chains kube-proxy's iptables mode left, now that kubevs's rules and virtual servers are in place",
				"family", fr.Family, "count", len(removed), "chains", sample(removed, 10))
		}
	}
}

// sample is the first n of names, and how many more there are.
func sample(names []string, n int) []string {
	if len(names) <= n {
		return names
	}
	return append(names[:n:n], fmt.Sprintf("... %d more", len(names)-n))
}
