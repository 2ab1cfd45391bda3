package bench

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
)

// Leftovers is what a proxier left in the kernel after its own cleanup, besides virtual
// servers: netfilter chains and ipsets named KUBE-*, and the kube-ipvs0 dummy link.
type Leftovers struct {
	Chains, Sets int
	Link         bool
}

func (l Leftovers) String() string {
	return fmt.Sprintf("%d KUBE-* chains, %d KUBE-* sets, kube-ipvs0 %t", l.Chains, l.Sets, l.Link)
}

// Zero reports whether nothing was left.
func (l Leftovers) Zero() bool { return l == Leftovers{} }

// Sweep counts the leftovers, then clears the guest's netfilter tables (both families,
// iptables' nf_tables and legacy backends), destroys every ipset and deletes kube-ipvs0, so
// the next proxier starts from a fresh kernel. It runs only in the benchmark's own guest,
// where nothing else owns rules or sets.
func Sweep(ctx context.Context) (Leftovers, error) {
	var l Leftovers
	var errs []error
	for _, save := range []string{"iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		out, err := exec.CommandContext(ctx, save).Output()
		if err != nil {
			continue // a backend this guest lacks
		}
		l.Chains += countPrefixed(string(out), ":KUBE-")
	}
	if out, err := exec.CommandContext(ctx, "ipset", "list", "-n").Output(); err == nil {
		l.Sets = countPrefixed(string(out), "KUBE-")
	}
	link, err := netlink.LinkByName("kube-ipvs0")
	l.Link = err == nil
	for _, cmd := range []string{"iptables", "ip6tables", "iptables-legacy", "ip6tables-legacy"} {
		if _, err := exec.LookPath(cmd); err != nil {
			continue
		}
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			for _, op := range []string{"-F", "-X"} {
				if out, err := exec.CommandContext(ctx, cmd, "-w", "-t", table, op).CombinedOutput(); err != nil && !strings.Contains(string(out), "does not exist") {
					errs = append(errs, fmt.Errorf("%s -t %s %s: %w: %s", cmd, table, op, err, out))
				}
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "ipset", "destroy").CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("ipset destroy: %w: %s", err, out))
	}
	if l.Link {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("delete link kube-ipvs0: %w", err))
		}
	}
	return l, errors.Join(errs...)
}

// countPrefixed counts the lines of text that start with prefix.
func countPrefixed(text, prefix string) int {
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}
