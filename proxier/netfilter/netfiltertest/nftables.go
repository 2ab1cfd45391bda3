package netfiltertest

import (
	"slices"
	"strings"
	"sync"

	"github.com/kubevs/kubevs/proxier/netfilter"
)

// NFTables is an in-memory netfilter.NFTables: the node's nftables tables, "FAMILY NAME".
type NFTables struct {
	mu     sync.Mutex
	tables []string
	// Err, when set, is what the next removals return, removing nothing.
	Err error
}

var _ netfilter.NFTables = (*NFTables)(nil)

// NewNFTables returns a node holding the given tables ("ip kube-proxy").
func NewNFTables(tables ...string) *NFTables { return &NFTables{tables: slices.Clone(tables)} }

// Tables returns the tables the node holds, sorted.
func (n *NFTables) Tables() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Sorted(slices.Values(n.tables))
}

// RemoveKubeProxyTables deletes "ip kube-proxy" and "ip6 kube-proxy", as the kernel would.
func (n *NFTables) RemoveKubeProxyTables() ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Err != nil {
		return nil, n.Err
	}
	var removed []string
	n.tables = slices.DeleteFunc(n.tables, func(t string) bool {
		fam, name, _ := strings.Cut(t, " ")
		if name == netfilter.KubeProxyNFTable && (fam == "ip" || fam == "ip6") {
			removed = append(removed, t)
			return true
		}
		return false
	})
	slices.Sort(removed)
	return removed, nil
}
