package reconcile

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/netfilter"
)

// errRulesWait stands for the fixed rules while they wait for the first Resync's virtual
// servers (kubeProxyServes): what depends on them (route_localnet, the removal of
// kube-proxy's leftovers) waits too.
var errRulesWait = errors.New("the rules wait for the first resync's virtual servers")

// kubeProxyServes reports whether kube-proxy's iptables mode still translates Services in
// a family kubevs programs (nat KUBE-SERVICES jumps to its per-Service chains: kube-proxy
// stopped without --cleanup). Writing kubevs's rules ends that translation, since they
// replace KUBE-SERVICES; written at Start, before any virtual server exists, they would leave
// every Service without an answer until the first Resync has converged. Start then leaves the
// rules to that Resync, which writes them once the virtual servers and their addresses are in
// place (writeRulesAfterVS): one iptables-restore per table switches from kube-proxy's DNAT
// to IPVS. A failure to look is logged and counts as no: the rules are written at Start.
func (r *Reconciler) kubeProxyServes(ctx context.Context) bool {
	if r.k.KubeProxyChains == nil {
		return false
	}
	for _, fr := range r.global.Rules {
		serves, err := r.k.KubeProxyChains.KubeProxyServes(fr.Family)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Cannot tell whether kube-proxy's iptables mode still serves Services; writing kubevs's rules now", "family", fr.Family)
			return false
		}
		if serves {
			klog.FromContext(ctx).Info("kube-proxy's iptables mode still serves Services: kubevs's rules wait for its virtual servers (first resync)", "family", fr.Family)
			return true
		}
	}
	return false
}

// writeRulesAfterVS writes the sets and rules that Start left to the first Resync, after its
// converge, and sets route_localnet if it is wanted. On failure they are written at the next
// Resync, again after its converge.
func (r *Reconciler) writeRulesAfterVS(ctx context.Context) error {
	err := r.ensureSetsAndRules(ctx)
	if err == nil {
		r.rulesAfterVS = false
		klog.FromContext(ctx).Info("Wrote kubevs's rules after its virtual servers: kube-proxy's iptables rules no longer translate Services")
	}
	r.ensureLocalnet(ctx, err)
	return err
}

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
