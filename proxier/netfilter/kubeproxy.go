package netfilter

// What kube-proxy's iptables mode leaves on a node that kubevs takes over. kubevs rewrites the
// chains whose names it shares with that mode (ownedChains: nat KUBE-SERVICES, KUBE-POSTROUTING,
// KUBE-MARK-MASQ; filter KUBE-SERVICES, KUBE-FORWARD, KUBE-PROXY-FIREWALL), so what is left
// are the chains only that mode writes: the per-Service and per-endpoint nat chains
// (KUBE-SVC-, KUBE-SVL-, KUBE-EXT-, KUBE-FW-, KUBE-SEP- followed by 16 characters of base32),
// KUBE-NODEPORTS (nat and filter), filter KUBE-EXTERNAL-SERVICES, and its canary
// KUBE-PROXY-CANARY (mangle, nat, filter), with the jumps to them from the built-in chains.
// Left in place, filter KUBE-EXTERNAL-SERVICES keeps rejecting the Services that had no
// endpoints when kube-proxy stopped, after they gained some.
//
// Never a leftover: the kubelet's chains (filter KUBE-FIREWALL, KUBE-KUBELET-CANARY,
// KUBE-MARK-DROP of older kubelets), chains kubevs owns, and anything else. A candidate
// that some other chain still jumps to is kept (deleting it would fail, and that chain's
// owner wants it), and so is whatever a kept candidate jumps to.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// KubeProxyChains removes what kube-proxy's iptables mode left in the iptables backend kubevs
// writes.
type KubeProxyChains interface {
	// RemoveKubeProxyChains deletes the chains of kube-proxy's iptables mode that kubevs does
	// not use (KubeProxyChain) and the rules of built-in chains that jump to them, in one
	// iptables-restore batch per table, and returns them as "TABLE/CHAIN", sorted. Nothing
	// else is changed. It is idempotent: with nothing left it changes nothing.
	RemoveKubeProxyChains(family Family) (removed []string, err error)
	// KubeProxyServes reports whether kube-proxy's iptables mode still translates Services in
	// family: nat KUBE-SERVICES jumps to one of its chains. Writing kubevs's rules ends that
	// (they replace KUBE-SERVICES), so kubevs then writes them only once its virtual servers
	// are in place.
	KubeProxyServes(family Family) (bool, error)
}

// KubeProxyServing reports whether the rules of nat KUBE-SERVICES (each without "-A
// KUBE-SERVICES") jump to a chain of kube-proxy's iptables mode.
func KubeProxyServing(services []string) bool {
	for _, r := range services {
		if KubeProxyChain("nat", target(r)) {
			return true
		}
	}
	return false
}

var _ KubeProxyChains = (*Linux)(nil)

// KubeProxyTables are the tables kube-proxy's iptables mode writes to.
var KubeProxyTables = []string{"filter", "mangle", "nat"}

var kubeProxyFixed = map[string][]string{
	"filter": {"KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-CANARY"},
	"mangle": {"KUBE-PROXY-CANARY"},
	"nat":    {"KUBE-NODEPORTS", "KUBE-PROXY-CANARY"},
}

// kubeProxyPrefixes name kube-proxy's per-Service and per-endpoint nat chains: each prefix
// is followed by the first 16 characters of a base32 hash.
var kubeProxyPrefixes = []string{"KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"}

// KubeProxyChain reports whether chain in table is one kube-proxy's iptables mode writes and
// kubevs does not use.
func KubeProxyChain(table, chain string) bool {
	if Owned(table, chain) {
		return false
	}
	if slices.Contains(kubeProxyFixed[table], chain) {
		return true
	}
	if table != "nat" {
		return false
	}
	for _, p := range kubeProxyPrefixes {
		if hash, ok := strings.CutPrefix(chain, p); ok && len(hash) == 16 && base32Upper(hash) {
			return true
		}
	}
	return false
}

func base32Upper(s string) bool {
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// KubeProxyLeftovers returns the chains of a table (its chains and their rules, each rule
// without "-A CHAIN") to remove, sorted: the KubeProxyChain ones that no chain jumps to but
// built-in chains and other chains removed.
func KubeProxyLeftovers(table string, chains []string, rules map[string][]string, builtin func(string) bool) []string {
	gone := map[string]bool{}
	for _, c := range chains {
		if KubeProxyChain(table, c) {
			gone[c] = true
		}
	}
	// Keep a candidate some kept chain jumps to, until nothing changes: keeping one keeps
	// what it jumps to.
	for changed := true; changed; {
		changed = false
		for _, from := range chains {
			if gone[from] || builtin(from) {
				continue
			}
			for _, r := range rules[from] {
				if to := target(r); gone[to] {
					delete(gone, to)
					changed = true
				}
			}
		}
	}
	out := make([]string, 0, len(gone))
	for c := range gone {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// leftoverPlan is the iptables-restore --noflush batch that removes the kube-proxy leftovers
// of cur (flush them, delete the built-in rules that jump to them, delete them); nil when
// there are none.
func leftoverPlan(cur *table) (lines, removed []string) {
	removed = KubeProxyLeftovers(cur.name, cur.chains, cur.rules, func(c string) bool { return Builtin(cur.name, c) })
	if len(removed) == 0 {
		return nil, nil
	}
	var decl, del, drop []string
	for _, c := range removed {
		decl = append(decl, ":"+c+" - [0:0]")
		drop = append(drop, "-X "+c)
	}
	for _, from := range cur.chains {
		if !Builtin(cur.name, from) {
			continue
		}
		for _, r := range cur.rules[from] {
			if slices.Contains(removed, target(r)) {
				del = append(del, "-D "+from+" "+r)
			}
		}
	}
	return slices.Concat([]string{"*" + cur.name}, decl, del, drop, []string{"COMMIT"}), removed
}

// RemoveKubeProxyChains reads every table of family with one iptables-save (which creates
// no table; none when the snapshots of KubeProxyTables are current) and writes one
// iptables-restore batch per table that holds leftovers.
func (l *Linux) RemoveKubeProxyChains(family Family) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tables, err := l.readAll(family, KubeProxyTables)
	if tables == nil {
		return nil, fmt.Errorf("remove kube-proxy's %s chains: %w", family, err)
	}
	var removed []string
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("remove kube-proxy's %s chains: %w", family, err))
	}
	for _, name := range KubeProxyTables {
		cur, ok := tables[name]
		if !ok {
			continue // its parse error is in errs
		}
		lines, gone := leftoverPlan(cur)
		if lines == nil {
			continue
		}
		if err := l.write(family, name, lines); err != nil {
			errs = append(errs, fmt.Errorf("remove kube-proxy's %s chains: table %s: %w", family, name, err))
			continue
		}
		for _, c := range gone {
			removed = append(removed, name+"/"+c)
		}
	}
	return removed, errors.Join(errs...)
}

// everyTable are the tables Linux reads: kubevs's (Tables) and kube-proxy's (KubeProxyTables).
func everyTable() []string {
	t := slices.Concat(Tables(), KubeProxyTables)
	slices.Sort(t)
	return slices.Compact(t)
}

// KubeProxyServes reads every table of family with one iptables-save (none when the
// snapshots are current), not nat alone: the same process gives the filter table Start's
// rules check reads next, which then starts no process with nf_tables (snapshot.go).
func (l *Linux) KubeProxyServes(family Family) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tables, err := l.readAll(family, everyTable())
	if tables["nat"] == nil {
		return false, fmt.Errorf("look for kube-proxy's %s rules: %w", family, err)
	}
	return KubeProxyServing(tables["nat"].rules["KUBE-SERVICES"]), nil
}
