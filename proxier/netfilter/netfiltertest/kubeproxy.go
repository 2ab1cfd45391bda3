package netfiltertest

import (
	"fmt"
	"slices"

	"github.com/kubevs/kubevs/proxier/netfilter"
)

// OpRemoveKubeProxy is the verb of RemoveKubeProxyChains in Ops.
const OpRemoveKubeProxy = "remove-kube-proxy"

var _ netfilter.KubeProxyChains = (*Fake)(nil)

// RemoveKubeProxyChains deletes the chains netfilter.KubeProxyLeftovers names in each table
// and the built-in rules that jump to them, recording a restore per table it changed.
func (f *Fake) RemoveKubeProxyChains(family netfilter.Family) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(OpRemoveKubeProxy, string(family), true)
	if err != nil {
		return nil, fmt.Errorf("remove kube-proxy's %s chains: %w", family, err)
	}
	var removed []string
	for _, name := range netfilter.KubeProxyTables {
		t, err := f.table(family, name)
		if err != nil {
			return removed, fmt.Errorf("remove kube-proxy's %s chains: %w", family, c.Done(err))
		}
		gone := netfilter.KubeProxyLeftovers(name, t.chains, t.rules, func(ch string) bool { return slices.Contains(builtins[name], ch) })
		if len(gone) == 0 {
			continue
		}
		for _, from := range builtins[name] {
			t.rules[from] = slices.DeleteFunc(t.rules[from], func(r string) bool { return slices.Contains(gone, target(r)) })
		}
		for _, ch := range gone {
			t.chains = slices.DeleteFunc(t.chains, func(x string) bool { return x == ch })
			delete(t.rules, ch)
			removed = append(removed, name+"/"+ch)
		}
		f.rec.Record("restore " + string(family) + " " + name)
	}
	f.syncSetRefs()
	return removed, nil
}

// KubeProxyServes reports whether nat KUBE-SERVICES jumps to a chain of kube-proxy's
// iptables mode. It is not recorded in Ops.
func (f *Fake) KubeProxyServes(family netfilter.Family) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(family, "nat")
	if err != nil {
		return false, err
	}
	return netfilter.KubeProxyServing(t.rules["KUBE-SERVICES"]), nil
}
