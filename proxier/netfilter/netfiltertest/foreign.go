package netfiltertest

import (
	"fmt"
	"slices"

	"github.com/kubevs/kubevs/proxier/netfilter"
)

// Flush empties chain in a table the way someone else's `iptables -t TABLE -F CHAIN` does
// (a firewall reload, another agent's restore); chain "" flushes every chain of the table, as
// `iptables -t TABLE -F` does. Chains stay declared. It is not recorded as an operation;
// a chain that does not exist is an error.
func (f *Fake) Flush(family netfilter.Family, tableName, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(family, tableName)
	if err != nil {
		return err
	}
	switch {
	case chain == "":
		t.rules = map[string][]string{}
	case !slices.Contains(t.chains, chain):
		return fmt.Errorf("flush %s chain %s in table %s: no such chain", family, chain, tableName)
	default:
		delete(t.rules, chain)
	}
	f.syncSetRefs()
	return nil
}
