package netfilter

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/ipset"
)

func TestPrintedTokens(t *testing.T) {
	tests := []struct {
		family Family
		rule   string
		want   string // the printed tokens joined by blanks
	}{
		{ipset.IPv4, "-j MARK --or-mark 0x4000", "-j MARK --set-xmark 0x4000/0x4000"},
		{ipset.IPv4, "-j MARK --or-mark 16384", "-j MARK --set-xmark 0x4000/0x4000"},
		{ipset.IPv4, "-j MARK --xor-mark 0x4000", "-j MARK --set-xmark 0x4000/0x0"},
		{ipset.IPv6, "-j MARK --set-mark 0x1", "-j MARK --set-xmark 0x1/0xffffffff"},
		{ipset.IPv4, "-m mark ! --mark 0x4000/0x4000 -j RETURN", "-m mark ! --mark 0x4000/0x4000 -j RETURN"},
		{ipset.IPv4, "-m set --match-set X dst -j REJECT", "-m set --match-set X dst -j REJECT --reject-with icmp-port-unreachable"},
		{ipset.IPv6, "-m set --match-set X dst -j REJECT", "-m set --match-set X dst -j REJECT --reject-with icmp6-port-unreachable"},
		// Already in the printed form, or not a form this knows: unchanged.
		{ipset.IPv4, "-j REJECT --reject-with tcp-reset", "-j REJECT --reject-with tcp-reset"},
		{ipset.IPv4, "-j MARK --set-xmark 0x4000/0x4000", "-j MARK --set-xmark 0x4000/0x4000"},
		{ipset.IPv4, "-j MARK --or-mark nonsense", "-j MARK --or-mark nonsense"},
		{ipset.IPv4, "-j MARK --and-mark 0x4000", "-j MARK --and-mark 0x4000"},
		{ipset.IPv4, `-m comment --comment "-j REJECT" -j ACCEPT`, `-m comment --comment "-j REJECT" -j ACCEPT`},
	}
	for _, tt := range tests {
		got, ok := printedTokens(tt.family, tt.rule)
		want, _ := tokens(tt.want)
		if !ok || !cmp.Equal(want, got) {
			t.Errorf("printedTokens(%s, %q) = %q, %v; want %q", tt.family, tt.rule, got, ok, want)
		}
	}
}

// A new Linux, which has written nothing, takes the kernel's rendering of a rule for the
// rule: the plan for a table that holds the ruleset as iptables-save prints it is empty.
func TestPlanAdoptsPrintedForms(t *testing.T) {
	cur, err := parseSave(`*filter
:INPUT ACCEPT [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-FORWARD - [0:0]
-A INPUT -j KUBE-IPVS-FILTER
-A KUBE-IPVS-FILTER -m set --match-set KUBE-6-IPVS-IPS dst -j REJECT --reject-with icmp6-port-unreachable
-A KUBE-FORWARD -j MARK --set-xmark 0x4000/0x0
COMMIT
`, "filter")
	if err != nil {
		t.Fatal(err)
	}
	rs := Ruleset{
		Chains: []Chain{
			{Table: "filter", Name: "KUBE-IPVS-FILTER", Rules: []string{"-m set --match-set KUBE-6-IPVS-IPS dst -j REJECT"}},
			{Table: "filter", Name: "KUBE-FORWARD", Rules: []string{"-j MARK --xor-mark 0x4000"}},
		},
		Jumps: []Jump{{Table: "filter", From: "INPUT", To: "KUBE-IPVS-FILTER"}},
	}
	if lines := plan(cur, rs, (&Linux{memo: map[string]written{}}).same(ipset.IPv6, "filter")); lines != nil {
		t.Errorf("plan for a table holding the printed forms = %q, want nothing", lines)
	}
	// The IPv4 default of REJECT is another message: that table does not hold it.
	if lines := plan(cur, rs, (&Linux{memo: map[string]written{}}).same(ipset.IPv4, "filter")); lines == nil {
		t.Errorf("IPv4: icmp6-port-unreachable taken for REJECT's default")
	}
}
