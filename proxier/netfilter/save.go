package netfilter

import (
	"fmt"
	"slices"
	"strings"
)

// table is one table as iptables-save prints it: its chains in print order and their rules,
// each rule without the "-A CHAIN " prefix.
type table struct {
	name   string
	chains []string
	rules  map[string][]string
}

func (t *table) has(chain string) bool { return slices.Contains(t.chains, chain) }

// parseSave reads the section of one table from iptables-save output. A table that is not in
// the output (not yet created in the kernel) is empty.
func parseSave(out, name string) (*table, error) {
	t := &table{name: name, rules: map[string][]string{}}
	in := false
	for n, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			in = line[1:] == name
		case !in:
		case line == "COMMIT":
			in = false
		case strings.HasPrefix(line, ":"):
			chain, _, _ := strings.Cut(line[1:], " ")
			if !t.has(chain) {
				t.chains = append(t.chains, chain)
			}
		case strings.HasPrefix(line, "-A "):
			chain, rule, _ := strings.Cut(line[3:], " ")
			if !t.has(chain) {
				return nil, fmt.Errorf("iptables-save line %d: rule in undeclared chain %s", n+1, chain)
			}
			t.rules[chain] = append(t.rules[chain], rule)
		default:
			return nil, fmt.Errorf("iptables-save line %d: unexpected %q", n+1, line)
		}
	}
	return t, nil
}

// tokens splits a rule as iptables-restore does: on blanks, with double quotes grouping and
// backslash escaping inside them. ok is false when a quote is left open.
func tokens(rule string) (toks []string, ok bool) {
	var cur strings.Builder
	inTok, quoted := false, false
	for i := 0; i < len(rule); i++ {
		c := rule[i]
		switch {
		case quoted && c == '\\' && i+1 < len(rule) && (rule[i+1] == '"' || rule[i+1] == '\\'):
			i++
			cur.WriteByte(rule[i])
		case c == '"':
			quoted, inTok = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if inTok {
				toks = append(toks, cur.String())
				cur.Reset()
				inTok = false
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

// sameRule compares two rules token by token, so quoting differences do not matter.
func sameRule(a, b string) bool {
	ta, _ := tokens(a)
	tb, _ := tokens(b)
	return slices.Equal(ta, tb)
}

func sameRules(a, b []string) bool {
	return slices.EqualFunc(a, b, sameRule)
}

// target returns the chain a rule jumps or goes to ("-j X" or "-g X" at its end), or "".
func target(rule string) string {
	t, _ := tokens(rule)
	if n := len(t); n >= 2 && (t[n-2] == "-j" || t[n-2] == "-g") {
		return t[n-1]
	}
	return ""
}

// jumpRule is the rule text of a jump, without the "-A From " prefix.
func jumpRule(j Jump) string {
	if m := strings.TrimSpace(j.Match); m != "" {
		return m + " -j " + j.To
	}
	return "-j " + j.To
}

// splitJump returns the match part of a jump rule (the rule less its final "-j To").
func splitJump(rule string) string {
	rule = strings.TrimSpace(rule)
	i := strings.LastIndex(rule, " -")
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(rule[:i])
}
