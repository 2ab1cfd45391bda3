// Package netfilter owns kubevs's iptables chains (KUBE-*): a small fixed set of rules that
// match kubevs's ipsets, written per table in one iptables-restore batch (--noflush), so the
// rules never change as Services come and go. It never touches a chain it does not own except
// for the single jump rule it inserts into each built-in chain it hooks.
package netfilter

import "github.com/kubevs/kubevs/proxier/ipset"

// Family selects iptables or ip6tables.
type Family = ipset.Family

// Chain is one owned chain and its rules, each rule in iptables-save syntax without the
// "-A CHAIN" prefix, for example "-m set --match-set KUBE-LOOP-BACK dst,dst,src -j KUBE-MARK-MASQ".
type Chain struct {
	Table string // "filter", "nat", "mangle", "raw"
	Name  string
	Rules []string
}

// Jump hooks an owned chain into a built-in chain: "-A <From> <Match> -j <To>", kept first.
type Jump struct {
	Table string
	From  string // a built-in chain: PREROUTING, OUTPUT, POSTROUTING, INPUT, FORWARD
	Match string // optional extra matches, e.g. "-m comment --comment kubevs"
	To    string
}

// Ruleset is everything kubevs wants in one family.
type Ruleset struct {
	Chains []Chain
	Jumps  []Jump
}

// Interface writes and removes kubevs's rules.
type Interface interface {
	// Ensure makes the owned chains hold exactly the given rules and the jumps exist, in one
	// batch per table; chains owned by kubevs but absent from rs are flushed and deleted.
	// It is idempotent and leaves other chains untouched.
	Ensure(family Family, rs Ruleset) error
	// Repair is Ensure that also reports the tables it rewrote, sorted: none when the kernel
	// already held rs. It reads each table once, so it is the cheap check a periodic
	// resync runs to find and undo what someone else changed (an `iptables -F KUBE-...`,
	// a firewall reload, another agent's restore).
	Repair(family Family, rs Ruleset) (rewritten []string, err error)
	// Verify reports the tables whose owned chains or jumps differ from rs, sorted, reading
	// each table once and writing nothing: the check a periodic resync runs without holding
	// the proxier's lock, leaving Repair, under the lock, to tables that differ.
	Verify(family Family, rs Ruleset) (differ []string, err error)
	// Cleanup removes every jump to a KUBE- chain kubevs owns and those chains.
	Cleanup(family Family) error
	// Dump returns the current rules of the owned chains, for status and tests.
	Dump(family Family) (Ruleset, error)
}
