package netfilter

// iptables-save prints some targets in another form than they may be written: MARK's
// --or-mark, --xor-mark and --set-mark as --set-xmark VALUE/MASK, and a REJECT without
// --reject-with with its default. Linux's memo (see remember) learns such renderings, but only
// after its own write: a new process (a proxier restart) found its own rules "different" and
// rewrote both tables of each family at every Start (2 iptables-restore and 2 iptables-save
// runs per family). Comparing with these renderings too lets a new process adopt what the
// last one wrote. Forms not listed here still go through the memo (one rewrite per process).

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// printedTokens returns the tokens of rule as iptables-save prints it, as far as this file
// knows the renderings; the rule's own tokens otherwise. ok is false for unbalanced quotes.
func printedTokens(family Family, rule string) (toks []string, ok bool) {
	toks, ok = tokens(rule)
	if !ok {
		return toks, false
	}
	n := len(toks)
	for i := 0; i+1 < n; i++ {
		if toks[i] != "-j" {
			continue
		}
		switch toks[i+1] {
		case "MARK":
			if i+3 != n-1 {
				return toks, true // not "-j MARK --op VALUE" at the end
			}
			if x, ok := xmark(toks[i+2], toks[i+3]); ok {
				return append(slices.Clone(toks[:i+2]), "--set-xmark", x), true
			}
		case "REJECT":
			if i+1 == n-1 {
				with := "icmp-port-unreachable"
				if family == ipset.IPv6 {
					with = "icmp6-port-unreachable"
				}
				return append(slices.Clone(toks), "--reject-with", with), true
			}
		}
		return toks, true
	}
	return toks, true
}

// xmark is the VALUE/MASK iptables-save prints for MARK's op with value v ("0x4000/0x4000"
// for --or-mark 0x4000).
func xmark(op, v string) (string, bool) {
	n, err := strconv.ParseUint(v, 0, 32)
	if err != nil {
		return "", false
	}
	switch op {
	case "--or-mark":
		return fmt.Sprintf("%#x/%#x", n, n), true
	case "--xor-mark":
		return fmt.Sprintf("%#x/0x0", n), true
	case "--set-mark":
		return fmt.Sprintf("%#x/0xffffffff", n), true
	}
	return "", false
}

// samePrinted reports whether the kernel's rules (have) are want as iptables-save prints
// them (printedTokens).
func samePrinted(family Family, want, have []string) bool {
	return slices.EqualFunc(want, have, func(w, h string) bool {
		tw, _ := printedTokens(family, w)
		th, _ := tokens(h)
		return slices.Equal(tw, th)
	})
}
