package netfilter

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Validate checks a ruleset before anything is written: every chain is owned (see
// OwnedChains) and declared once, rules are single lines with balanced quotes, rules jump only
// to declared owned chains, and jumps leave a built-in chain for a declared chain.
func (rs Ruleset) Validate() error {
	var errs []error
	declared := map[string]bool{}
	for _, c := range rs.Chains {
		key := c.Table + "/" + c.Name
		switch {
		case !Owned(c.Table, c.Name):
			errs = append(errs, fmt.Errorf("chain %s in table %q is not one kubevs owns (see netfilter.OwnedChains)", c.Name, c.Table))
		case declared[key]:
			errs = append(errs, fmt.Errorf("chain %s in table %s declared twice", c.Name, c.Table))
		}
		declared[key] = true
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			toks, ok := tokens(r)
			switch {
			case !ok || len(toks) == 0 || strings.ContainsAny(r, "\n\r"):
				errs = append(errs, fmt.Errorf("chain %s: malformed rule %q", c.Name, r))
			case Owned(c.Table, target(r)) && !declared[c.Table+"/"+target(r)]:
				errs = append(errs, fmt.Errorf("chain %s: rule %q jumps to %s, which the ruleset does not declare", c.Name, r, target(r)))
			}
		}
	}
	for _, j := range rs.Jumps {
		toks, ok := tokens(j.Match)
		switch {
		case !Builtin(j.Table, j.From):
			errs = append(errs, fmt.Errorf("jump %s -> %s: %s is not a built-in chain of table %q", j.From, j.To, j.From, j.Table))
		case !declared[j.Table+"/"+j.To]:
			errs = append(errs, fmt.Errorf("jump %s -> %s: the ruleset does not declare chain %s in table %s", j.From, j.To, j.To, j.Table))
		case !ok || strings.ContainsAny(j.Match, "\n\r") || slices.Contains(toks, "-j") || slices.Contains(toks, "-g"):
			errs = append(errs, fmt.Errorf("jump %s -> %s: malformed match %q", j.From, j.To, j.Match))
		}
	}
	return errors.Join(errs...)
}

// jumpKey groups the jumps kubevs keeps from one built-in chain to one owned chain.
type jumpKey struct{ from, to string }

// sameFunc tells whether the kernel's rules (have) already are what was asked for (want);
// id is a chain name or "jump:FROM>TO". It may know what the kernel prints for rules written
// in a non-canonical form.
type sameFunc func(id string, want, have []string) bool

func jumpID(k jumpKey) string { return "jump:" + k.from + ">" + k.to }

// plan returns the iptables-restore --noflush batch that makes table cur hold the owned
// chains and jumps of rs (the parts of rs for cur's table); nil when nothing needs changing.
// Order inside the batch: declare (and so flush) the chains to write and the stale ones,
// delete unwanted jumps, append the rules, insert missing jumps at the top, delete stale
// chains.
func plan(cur *table, rs Ruleset, same sameFunc) []string {
	var decl, del, add, ins, drop []string
	wanted := map[string]bool{}
	for _, c := range rs.Chains {
		if c.Table != cur.name {
			continue
		}
		wanted[c.Name] = true
		if cur.has(c.Name) && same(c.Name, c.Rules, cur.rules[c.Name]) {
			continue
		}
		decl = append(decl, ":"+c.Name+" - [0:0]")
		for _, r := range c.Rules {
			add = append(add, "-A "+c.Name+" "+r)
		}
	}
	for _, name := range cur.chains {
		if Owned(cur.name, name) && !wanted[name] {
			decl = append(decl, ":"+name+" - [0:0]")
			drop = append(drop, "-X "+name)
		}
	}
	want := map[jumpKey][]string{}
	var order []jumpKey
	for _, j := range rs.Jumps {
		if j.Table != cur.name {
			continue
		}
		k := jumpKey{j.From, j.To}
		if _, ok := want[k]; !ok {
			order = append(order, k)
		}
		want[k] = append(want[k], jumpRule(j))
	}
	have := existingJumps(cur)
	for _, k := range sortedKeys(have) {
		if w, ok := want[k]; !ok || !same(jumpID(k), w, have[k]) {
			for _, r := range have[k] {
				del = append(del, "-D "+k.from+" "+r)
			}
		}
	}
	// Insert in reverse so that the first jump of rs ends up first in its chain.
	for i := len(order) - 1; i >= 0; i-- {
		k := order[i]
		if h, ok := have[k]; ok && same(jumpID(k), want[k], h) {
			continue
		}
		for j := len(want[k]) - 1; j >= 0; j-- {
			ins = append(ins, "-I "+k.from+" 1 "+want[k][j])
		}
	}
	lines := slices.Concat(decl, del, add, ins, drop)
	if len(lines) == 0 {
		return nil
	}
	return slices.Concat([]string{"*" + cur.name}, lines, []string{"COMMIT"})
}

// cleanupPlan removes every jump to an owned chain from the built-in chains and every owned
// chain; nil when there is none.
func cleanupPlan(cur *table) []string {
	var decl, del, drop []string
	have := existingJumps(cur)
	for _, k := range sortedKeys(have) {
		for _, r := range have[k] {
			del = append(del, "-D "+k.from+" "+r)
		}
	}
	for _, name := range cur.chains {
		if Owned(cur.name, name) {
			decl = append(decl, ":"+name+" - [0:0]")
			drop = append(drop, "-X "+name)
		}
	}
	lines := slices.Concat(decl, del, drop)
	if len(lines) == 0 {
		return nil
	}
	return slices.Concat([]string{"*" + cur.name}, lines, []string{"COMMIT"})
}

// existingJumps finds the rules in built-in chains that lead to owned chains.
func existingJumps(cur *table) map[jumpKey][]string {
	out := map[jumpKey][]string{}
	for _, from := range cur.chains {
		if !Builtin(cur.name, from) {
			continue
		}
		for _, r := range cur.rules[from] {
			if to := target(r); Owned(cur.name, to) {
				k := jumpKey{from, to}
				out[k] = append(out[k], r)
			}
		}
	}
	return out
}

func sortedKeys(m map[jumpKey][]string) []jumpKey {
	keys := make([]jumpKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b jumpKey) int {
		return strings.Compare(a.from+" "+a.to, b.from+" "+b.to)
	})
	return keys
}

// dumpTable returns the owned chains (sorted by name) and the jumps into them, as a Ruleset
// that Ensure accepts back unchanged.
func dumpTable(cur *table) Ruleset {
	var rs Ruleset
	names := slices.Clone(cur.chains)
	slices.Sort(names)
	for _, name := range names {
		if Owned(cur.name, name) {
			rs.Chains = append(rs.Chains, Chain{Table: cur.name, Name: name, Rules: slices.Clone(cur.rules[name])})
		}
	}
	for _, from := range cur.chains {
		if !Builtin(cur.name, from) {
			continue
		}
		for _, r := range cur.rules[from] {
			if to := target(r); Owned(cur.name, to) {
				rs.Jumps = append(rs.Jumps, Jump{Table: cur.name, From: from, Match: splitJump(r), To: to})
			}
		}
	}
	return rs
}
