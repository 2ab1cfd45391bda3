// Package netfiltertest holds an in-memory netfilter.Interface: per family and table it keeps
// the built-in chains, kubevs's owned chains and foreign chains with their rules, applies
// Ensure and Cleanup as one atomic batch per table the way iptables-restore --noflush does,
// records the batches it would run, and can fail on demand.
package netfiltertest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// Fake is an in-memory iptables. It is safe for concurrent use.
//
// Ops records one line per call ("ensure inet", "cleanup inet6", "dump inet") followed by one
// "restore <family> <table>" line per table the call changed, which is what the Linux
// implementation runs iptables-restore for. A call that fails gets " (failed)" appended.
//
// Rules are kept exactly as written (the fake does not canonicalize like iptables-save), and
// compared token by token. FailNext and SetHook fail a call of a verb, changing nothing.
type Fake struct {
	*kfake.Log
	rec    *kfake.Recorder
	mu     sync.Mutex
	tables map[string]*table // "family/table"
	sets   *ipsettest.Fake
	// referenced are the sets the rules referenced after the last change.
	referenced []string
}

type table struct {
	chains []string // built-ins first, then others in creation order
	rules  map[string][]string
}

var _ netfilter.Interface = (*Fake)(nil)

// The verbs of Ops, for FailNext, Calls and hooks.
const (
	OpEnsure  = "ensure"
	OpCleanup = "cleanup"
	OpDump    = "dump"
	OpVerify  = "verify"
)

var builtins = map[string][]string{
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":    {"PREROUTING", "OUTPUT"},
}

// NewFake returns empty tables (built-in chains only).
func NewFake() *Fake {
	log, rec := kfake.New(kfake.MarkFailed)
	return &Fake{Log: log, rec: rec, tables: map[string]*table{}}
}

// UseSets links the fake to an ipset fake: a rule with "--match-set NAME" fails to load when
// the set does not exist (as iptables-restore does), and a set some rule references is
// marked in use, so destroying it fails with ipset.ErrInUse.
func (f *Fake) UseSets(sets *ipsettest.Fake) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = sets
}

// Append adds a rule (iptables-save syntax without "-A CHAIN") at the end of a chain,
// creating the chain if it is not built-in: the way tests put foreign rules in place.
func (f *Fake) Append(family netfilter.Family, tableName, chain, rule string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.table(family, tableName)
	if err != nil {
		return err
	}
	if !slices.Contains(t.chains, chain) {
		t.chains = append(t.chains, chain)
	}
	if rule != "" {
		t.rules[chain] = append(t.rules[chain], rule)
	}
	return nil
}

func (f *Fake) table(family netfilter.Family, name string) (*table, error) {
	if family != "inet" && family != "inet6" {
		return nil, fmt.Errorf("unknown family %q", family)
	}
	b, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("unknown table %q", name)
	}
	key := string(family) + "/" + name
	t, ok := f.tables[key]
	if !ok {
		t = &table{chains: slices.Clone(b), rules: map[string][]string{}}
		f.tables[key] = t
	}
	return t, nil
}

func (t *table) clone() *table {
	c := &table{chains: slices.Clone(t.chains), rules: map[string][]string{}}
	for k, v := range t.rules {
		c.rules[k] = slices.Clone(v)
	}
	return c
}

func (t *table) equal(o *table) bool {
	return slices.Equal(t.chains, o.chains) && maps.EqualFunc(t.rules, o.rules, slices.Equal)
}

// Ensure applies rs to each table in one atomic step, recording a restore per changed table.
func (f *Fake) Ensure(family netfilter.Family, rs netfilter.Ruleset) error {
	_, err := f.Repair(family, rs)
	return err
}

// Repair is Ensure returning the tables it changed, sorted; Ops records it as Ensure.
func (f *Fake) Repair(family netfilter.Family, rs netfilter.Ruleset) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var changed []string
	c, err := f.rec.Begin(OpEnsure, string(family), true)
	if err == nil {
		err = rs.Validate()
	}
	if err == nil {
		changed, err = f.apply(family, func(name string, t *table) error { return ensure(name, t, rs) })
	}
	if err != nil {
		return changed, fmt.Errorf("ensure %s rules: %w", family, c.Done(err))
	}
	return changed, nil
}

// Cleanup removes the jumps to owned chains and the owned chains.
func (f *Fake) Cleanup(family netfilter.Family) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(OpCleanup, string(family), true)
	if err == nil {
		_, err = f.apply(family, func(name string, t *table) error { return ensure(name, t, netfilter.Ruleset{}) })
	}
	if err != nil {
		return fmt.Errorf("clean up %s rules: %w", family, c.Done(err))
	}
	return nil
}

// apply runs change on a copy of each table kubevs uses and commits the tables that changed,
// each on its own as iptables-restore does; errors of the tables are joined. It returns the
// tables it changed.
// Verify reports the tables Repair would change, changing nothing; Ops records "verify
// <family>".
func (f *Fake) Verify(family netfilter.Family, rs netfilter.Ruleset) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(OpVerify, string(family), true)
	if err == nil {
		err = rs.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("verify %s rules: %w", family, c.Done(err))
	}
	var differ []string
	for _, name := range netfilter.Tables() {
		t, err := f.table(family, name)
		if err != nil {
			return differ, fmt.Errorf("verify %s rules: %w", family, c.Done(err))
		}
		next := t.clone()
		if err := ensure(name, next, rs); err != nil || !next.equal(t) {
			differ = append(differ, name)
		}
	}
	return differ, nil
}

func (f *Fake) apply(family netfilter.Family, change func(string, *table) error) ([]string, error) {
	var errs []error
	var changed []string
	for _, name := range netfilter.Tables() {
		t, err := f.table(family, name)
		if err != nil {
			return changed, err
		}
		next := t.clone()
		if err := change(name, next); err != nil {
			errs = append(errs, fmt.Errorf("table %s: %w", name, err))
			continue
		}
		if next.equal(t) {
			continue
		}
		if err := f.checkSets(next); err != nil {
			errs = append(errs, fmt.Errorf("table %s: %w", name, err))
			continue
		}
		f.rec.Record("restore " + string(family) + " " + name)
		f.tables[string(family)+"/"+name] = next
		f.syncSetRefs()
		changed = append(changed, name)
	}
	return changed, errors.Join(errs...)
}

// ensure makes t hold the owned chains and jumps rs wants for table name.
func ensure(name string, t *table, rs netfilter.Ruleset) error {
	wanted := map[string][]string{}
	for _, c := range rs.Chains {
		if c.Table == name {
			wanted[c.Name] = c.Rules
		}
	}
	// Jumps first: drop the groups (from, to) that differ, re-insert them at the top.
	type key struct{ from, to string }
	want := map[key][]string{}
	var order []key
	for _, j := range rs.Jumps {
		if j.Table != name {
			continue
		}
		k := key{j.From, j.To}
		if _, ok := want[k]; !ok {
			order = append(order, k)
		}
		r := "-j " + j.To
		if m := strings.TrimSpace(j.Match); m != "" {
			r = m + " " + r
		}
		want[k] = append(want[k], r)
	}
	have := map[key][]string{}
	for _, from := range builtins[name] {
		for _, r := range t.rules[from] {
			if to := target(r); netfilter.Owned(name, to) {
				have[key{from, to}] = append(have[key{from, to}], r)
			}
		}
	}
	changed := map[key]bool{}
	for k, h := range have {
		if w, ok := want[k]; !ok || !sameRules(w, h) {
			changed[k] = true
			t.rules[k.from] = slices.DeleteFunc(t.rules[k.from], func(r string) bool { return target(r) == k.to })
		}
	}
	for i := len(order) - 1; i >= 0; i-- {
		k := order[i]
		if _, ok := have[k]; ok && !changed[k] {
			continue
		}
		t.rules[k.from] = slices.Concat(want[k], t.rules[k.from])
	}
	// Owned chains: write the wanted ones, delete the rest.
	for _, c := range rs.Chains {
		if c.Table != name {
			continue
		}
		if !slices.Contains(t.chains, c.Name) {
			t.chains = append(t.chains, c.Name)
		}
		if !sameRules(c.Rules, t.rules[c.Name]) {
			t.rules[c.Name] = slices.Clone(c.Rules)
		}
	}
	// Stale owned chains are all flushed first, then deleted, as the iptables-restore batch
	// does (it declares every stale chain before its -X lines): a stale chain may jump to
	// another stale one. A chain kubevs keeps, or a foreign one, that still jumps to a stale
	// chain makes the delete fail, as in the kernel.
	var stale []string
	for _, chain := range t.chains {
		if _, ok := wanted[chain]; netfilter.Owned(name, chain) && !ok {
			stale = append(stale, chain)
		}
	}
	for _, chain := range stale {
		t.rules[chain] = nil
	}
	for _, chain := range stale {
		for _, other := range t.chains {
			for _, r := range t.rules[other] {
				if other != chain && target(r) == chain {
					return fmt.Errorf("delete chain %s: chain %s still jumps to it (Too many links)", chain, other)
				}
			}
		}
	}
	for _, chain := range stale {
		t.chains = slices.DeleteFunc(t.chains, func(c string) bool { return c == chain })
		delete(t.rules, chain)
	}
	// Every rule must jump to a chain that exists, as iptables-restore checks.
	for _, chain := range t.chains {
		for _, r := range t.rules[chain] {
			if to := target(r); to != "" && strings.HasPrefix(to, "KUBE-") && !slices.Contains(t.chains, to) {
				return fmt.Errorf("chain %s: rule %q: no chain %s", chain, r, to)
			}
		}
	}
	return nil
}

// checkSets fails when a rule of t matches a set the linked ipset fake does not hold.
func (f *Fake) checkSets(t *table) error {
	if f.sets == nil {
		return nil
	}
	for _, chain := range t.chains {
		for _, r := range t.rules[chain] {
			for _, s := range matchSets(r) {
				if !f.sets.Has(s) {
					return fmt.Errorf("chain %s: rule %q: set %s does not exist", chain, r, s)
				}
			}
		}
	}
	return nil
}

// syncSetRefs marks in the ipset fake which sets the rules reference.
func (f *Fake) syncSetRefs() {
	if f.sets == nil {
		return
	}
	refs := map[string]bool{}
	for _, t := range f.tables {
		for _, rules := range t.rules {
			for _, r := range rules {
				for _, s := range matchSets(r) {
					refs[s] = true
				}
			}
		}
	}
	for s := range refs {
		_ = f.sets.SetInUse(s, true)
	}
	for _, s := range f.referenced {
		if !refs[s] {
			_ = f.sets.SetInUse(s, false)
		}
	}
	f.referenced = slices.Sorted(maps.Keys(refs))
}

// Dump returns the owned chains (per table, sorted by name) and the jumps into them.
func (f *Fake) Dump(family netfilter.Family) (netfilter.Ruleset, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(OpDump, string(family), true)
	if err != nil {
		return netfilter.Ruleset{}, err
	}
	var rs netfilter.Ruleset
	for _, name := range netfilter.Tables() {
		t, err := f.table(family, name)
		if err != nil {
			return netfilter.Ruleset{}, c.Done(err)
		}
		for _, chain := range slices.Sorted(slices.Values(t.chains)) {
			if netfilter.Owned(name, chain) {
				rs.Chains = append(rs.Chains, netfilter.Chain{Table: name, Name: chain, Rules: slices.Clone(t.rules[chain])})
			}
		}
		for _, from := range builtins[name] {
			for _, r := range t.rules[from] {
				if to := target(r); netfilter.Owned(name, to) {
					toks, _ := tokens(r)
					match := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(r), to))
					match = strings.TrimSpace(strings.TrimSuffix(match, toks[len(toks)-2]))
					rs.Jumps = append(rs.Jumps, netfilter.Jump{Table: name, From: from, Match: match, To: to})
				}
			}
		}
	}
	return rs, nil
}

// Save prints every table that holds anything beyond empty built-in chains, like
// iptables-save without counters, families and tables sorted, user chains sorted by name:
//
//	# inet
//	*nat
//	:KUBE-SERVICES
//	-A PREROUTING -j KUBE-SERVICES
//	COMMIT
func (f *Fake) Save() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	family := ""
	for _, key := range slices.Sorted(maps.Keys(f.tables)) {
		t := f.tables[key]
		fam, name, _ := strings.Cut(key, "/")
		user := slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(t.chains), func(c string) bool {
			return slices.Contains(builtins[name], c)
		})))
		rules := 0
		for _, r := range t.rules {
			rules += len(r)
		}
		if len(user) == 0 && rules == 0 {
			continue
		}
		if fam != family {
			fmt.Fprintf(&b, "# %s\n", fam)
			family = fam
		}
		fmt.Fprintf(&b, "*%s\n", name)
		for _, c := range user {
			fmt.Fprintf(&b, ":%s\n", c)
		}
		for _, c := range slices.Concat(builtins[name], user) {
			for _, r := range t.rules[c] {
				fmt.Fprintf(&b, "-A %s %s\n", c, r)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// tokens splits a rule on blanks, with double quotes grouping (backslash escapes inside).
func tokens(rule string) (toks []string, ok bool) {
	var cur strings.Builder
	inTok, quoted := false, false
	for i := 0; i < len(rule); i++ {
		c := rule[i]
		switch {
		case quoted && c == '\\' && i+1 < len(rule):
			i++
			cur.WriteByte(rule[i])
		case c == '"':
			quoted, inTok = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if inTok {
				toks, inTok = append(toks, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	if inTok {
		toks = append(toks, cur.String())
	}
	return toks, !quoted
}

func sameRules(a, b []string) bool {
	return slices.EqualFunc(a, b, func(x, y string) bool {
		tx, _ := tokens(x)
		ty, _ := tokens(y)
		return slices.Equal(tx, ty)
	})
}

// target is the chain a rule jumps or goes to, or "".
func target(rule string) string {
	t, _ := tokens(rule)
	if n := len(t); n >= 2 && (t[n-2] == "-j" || t[n-2] == "-g") {
		return t[n-1]
	}
	return ""
}

// matchSets returns the sets a rule matches with "--match-set NAME".
func matchSets(rule string) []string {
	t, _ := tokens(rule)
	var out []string
	for i := 0; i+1 < len(t); i++ {
		if t[i] == "--match-set" {
			out = append(out, t[i+1])
		}
	}
	return out
}
