package status

// The fixed state: kubevs's sets (existence and members) and its iptables chains and jumps.
// A flush of kubevs's chains (`iptables -F`, a firewall reload) or of a set loses traffic
// while IPVS looks fine, so status reports it too. Rules are compared by count per owned
// chain and by the jumps from the built-in chains, not by text: iptables-save prints some
// rules in another form than kubevs writes them (--or-mark as --set-xmark), and a status run
// has no memory of what was written. A flushed or missing chain, or a missing jump, is what
// happens on real nodes, and is what this finds.

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// The kinds of drift of the fixed state.
const (
	MissingSet       DriftKind = "missing-set"
	MissingSetMember DriftKind = "missing-set-member"
	ExtraSetMember   DriftKind = "extra-set-member"
	RulesDiffer      DriftKind = "rules-differ"
	MissingJump      DriftKind = "missing-jump"
)

// FixedSnapshot is what the kernel holds of kubevs's sets and rules, read by ReadFixed.
type FixedSnapshot struct {
	// Sets maps each owned set that exists to its members.
	Sets map[string][]ipset.Entry
	// Rules are the owned chains and jumps of each family read.
	Rules map[ipset.Family]netfilter.Ruleset
}

// ReadFixed reads the owned sets named in g and the owned rules of g's families, through
// read-only calls only (Sets, Entries, Dump). Either adapter may be nil: that part is not read.
func ReadFixed(is ipset.Interface, nf netfilter.Interface, g desired.GlobalState) (FixedSnapshot, error) {
	fx := FixedSnapshot{Sets: map[string][]ipset.Entry{}, Rules: map[ipset.Family]netfilter.Ruleset{}}
	if is != nil {
		names, err := is.Sets()
		if err != nil {
			return fx, fmt.Errorf("list sets: %w", err)
		}
		var present []string
		for _, s := range g.Sets {
			if slices.Contains(names, s.Name) {
				present = append(present, s.Name)
			}
		}
		members, err := setMembers(is, present)
		if err != nil {
			return fx, err
		}
		for i, name := range present {
			if members[i] != nil {
				fx.Sets[name] = members[i]
			}
		}
	}
	if nf != nil {
		for _, fr := range g.Rules {
			rs, err := nf.Dump(fr.Family)
			if err != nil {
				return fx, fmt.Errorf("read %s rules: %w", fr.Family, err)
			}
			fx.Rules[fr.Family] = rs
		}
	}
	return fx, nil
}

// batchIPSet lists the members of many sets at once (guardedIPSet: in one job of the
// reader), with listMembers's results in the order of names.
type batchIPSet interface {
	membersOf(names []string) ([][]ipset.Entry, error)
}

// setMembers lists the members of each set, in order: through is's batch when it has one,
// else one Entries call after the other.
func setMembers(is ipset.Interface, names []string) ([][]ipset.Entry, error) {
	if b, ok := is.(batchIPSet); ok {
		return b.membersOf(names)
	}
	out := make([][]ipset.Entry, len(names))
	for i, name := range names {
		var err error
		if out[i], err = listMembers(is, name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// listMembers lists a set's members: a non-nil slice, or nil and no error when the set has
// gone since the listing of the sets.
func listMembers(is ipset.Interface, name string) ([]ipset.Entry, error) {
	es, err := is.Entries(name)
	if errors.Is(err, ipset.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list members of set %s: %w", name, err)
	}
	if es == nil {
		es = []ipset.Entry{}
	}
	return es, nil
}

// CompareFixed reports the drift between the fixed state g and the members wants ask for,
// and what fx holds. checkSets and checkRules say which parts fx holds. It is pure.
func CompareFixed(g desired.GlobalState, wants []Want, fx FixedSnapshot, checkSets, checkRules bool) []Drift {
	var out []Drift
	if checkSets {
		wanted := map[string]map[ipset.Entry]string{}
		for _, w := range wants {
			for _, e := range w.State.Entries {
				if wanted[e.Set] == nil {
					wanted[e.Set] = map[ipset.Entry]string{}
				}
				wanted[e.Set][e.Entry] = w.Service.String()
			}
		}
		for _, s := range g.Sets {
			have, ok := fx.Sets[s.Name]
			if !ok {
				out = append(out, Drift{Kind: MissingSet, Object: s.Name, Want: string(s.Type), Have: "no such set"})
				continue
			}
			inKernel := make(map[ipset.Entry]bool, len(have))
			for _, e := range have {
				inKernel[e] = true
			}
			for _, e := range sortedEntries(wanted[s.Name]) {
				if !inKernel[e] {
					out = append(out, Drift{Kind: MissingSetMember, Service: wanted[s.Name][e], Object: s.Name + " " + string(e), Want: "member", Have: "absent"})
				}
			}
			for _, e := range have {
				if _, ok := wanted[s.Name][e]; !ok {
					out = append(out, Drift{Kind: ExtraSetMember, Object: s.Name + " " + string(e), Want: "absent", Have: "member"})
				}
			}
		}
	}
	if checkRules {
		for _, fr := range g.Rules {
			have := fx.Rules[fr.Family]
			for _, c := range fr.Chains {
				n := -1
				for _, hc := range have.Chains {
					if hc.Table == c.Table && hc.Name == c.Name {
						n = len(hc.Rules)
					}
				}
				if n != len(c.Rules) {
					hv := fmt.Sprintf("%d rules", n)
					if n < 0 {
						hv = "no such chain"
					}
					out = append(out, Drift{Kind: RulesDiffer, Object: fmt.Sprintf("%s %s %s", fr.Family, c.Table, c.Name),
						Want: fmt.Sprintf("%d rules", len(c.Rules)), Have: hv})
				}
			}
			for _, j := range fr.Jumps {
				if !slices.ContainsFunc(have.Jumps, func(h netfilter.Jump) bool { return h.Table == j.Table && h.From == j.From && h.To == j.To }) {
					out = append(out, Drift{Kind: MissingJump, Object: fmt.Sprintf("%s %s %s -> %s", fr.Family, j.Table, j.From, j.To),
						Want: "jump", Have: "absent"})
				}
			}
		}
	}
	return out
}

func sortedEntries(m map[ipset.Entry]string) []ipset.Entry {
	out := make([]ipset.Entry, 0, len(m))
	for e := range m {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}
