//go:build linux

package netfilter

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipset"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// save returns iptables-save's rules for a table without comments and counters lines.
func save(t *testing.T, l *Linux, family Family, table string) string {
	t.Helper()
	tl, _ := l.tools(family)
	var keep []string
	for _, line := range strings.Split(run(t, tl.save, "-t", table), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n") + "\n"
}

func ruleset(masq string) Ruleset {
	return Ruleset{
		Chains: []Chain{
			{Table: "nat", Name: "KUBE-SERVICES", Rules: []string{
				"-m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ",
			}},
			{Table: "nat", Name: "KUBE-MARK-MASQ", Rules: []string{"-j MARK --or-mark " + masq}},
			{Table: "nat", Name: "KUBE-POSTROUTING", Rules: []string{
				"-m mark ! --mark " + masq + "/" + masq + " -j RETURN",
				"-j MARK --xor-mark " + masq,
				`-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE`,
			}},
			{Table: "filter", Name: "KUBE-IPVS-FILTER", Rules: []string{
				"-m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT",
			}},
		},
		Jumps: []Jump{
			{Table: "nat", From: "PREROUTING", Match: `-m comment --comment "kubevs service portals"`, To: "KUBE-SERVICES"},
			{Table: "nat", From: "OUTPUT", Match: `-m comment --comment "kubevs service portals"`, To: "KUBE-SERVICES"},
			{Table: "nat", From: "POSTROUTING", Match: "-m comment --comment kubevs", To: "KUBE-POSTROUTING"},
			{Table: "filter", From: "INPUT", To: "KUBE-IPVS-FILTER"},
		},
	}
}

func backends(t *testing.T, fn func(t *testing.T, l *Linux)) {
	for _, b := range []Backend{BackendNFT, BackendLegacy} {
		t.Run(string(b), func(t *testing.T) {
			testenv.EnterNetns(t)
			l, err := NewBackend(b)
			if err != nil {
				t.Fatal(err)
			}
			fn(t, l)
		})
	}
}

func TestLinuxEnsure(t *testing.T) {
	backends(t, func(t *testing.T, l *Linux) {
		for _, f := range []string{"4", "6"} {
			family, prefix := ipset.IPv4, "iptables"
			if f == "6" {
				family, prefix = ipset.IPv6, "ip6tables"
			}
			// Foreign rules go through the same backend as l.
			prefix += map[Backend]string{BackendNFT: "-nft", BackendLegacy: "-legacy"}[l.Backend()]
			setFamily := "inet"
			if f == "6" {
				setFamily = "inet6"
			}
			// A real set for -m set to load, foreign rules and chains that must survive.
			run(t, "ipset", "create", "KUBE-CLUSTER-IP"+f, "hash:ip,port", "family", setFamily)
			run(t, prefix, "-w", "-t", "nat", "-N", "FOREIGN")
			run(t, prefix, "-w", "-t", "nat", "-A", "FOREIGN", "-j", "RETURN")
			run(t, prefix, "-w", "-t", "nat", "-A", "PREROUTING", "-j", "FOREIGN")
			run(t, prefix, "-w", "-t", "filter", "-N", "KUBE-FIREWALL") // the kubelet's, not ours
			run(t, prefix, "-w", "-t", "filter", "-A", "KUBE-FIREWALL", "-j", "RETURN")
			run(t, prefix, "-w", "-t", "filter", "-A", "INPUT", "-j", "KUBE-FIREWALL")

			rs := ruleset("0x4000")
			for i := range rs.Chains {
				for j, r := range rs.Chains[i].Rules {
					rs.Chains[i].Rules[j] = strings.ReplaceAll(r, "KUBE-CLUSTER-IP", "KUBE-CLUSTER-IP"+f)
				}
			}
			if err := l.Ensure(family, rs); err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			nat, filter := save(t, l, family, "nat"), save(t, l, family, "filter")
			for _, want := range []string{
				"-A PREROUTING -m comment --comment \"kubevs service portals\" -j KUBE-SERVICES\n-A PREROUTING -j FOREIGN",
				"-A FOREIGN -j RETURN",
				"-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
				"-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP" + f + " dst,dst -j KUBE-MARK-MASQ",
			} {
				if !strings.Contains(nat, want) {
					t.Errorf("IPv%s nat table lacks %q:\n%s", f, want, nat)
				}
			}
			if !strings.Contains(filter, "-A INPUT -j KUBE-IPVS-FILTER\n-A INPUT -j KUBE-FIREWALL") {
				t.Errorf("IPv%s filter: jump not first or kubelet's rule lost:\n%s", f, filter)
			}

			// Ensure again: nothing is written (even though --or-mark prints as --set-xmark).
			before, restores := nat+filter, l.restores
			if err := l.Ensure(family, rs); err != nil {
				t.Fatalf("second Ensure: %v", err)
			}
			if l.restores != restores {
				t.Errorf("second Ensure ran iptables-restore %d times, want 0", l.restores-restores)
			}
			if after := save(t, l, family, "nat") + save(t, l, family, "filter"); after != before {
				t.Errorf("second Ensure changed the tables:\n%s", cmp.Diff(before, after))
			}
			// A fresh Linux (no memory of what it wrote) adopts the rules: Dump parses back.
			dump, err := l.Dump(family)
			if err != nil {
				t.Fatal(err)
			}
			fresh, _ := NewBackend(l.Backend())
			if err := fresh.Ensure(family, dump); err != nil {
				t.Fatal(err)
			}
			if fresh.restores != 0 {
				t.Errorf("Ensure(Dump()) ran iptables-restore %d times, want 0", fresh.restores)
			}
			if after := save(t, l, family, "nat") + save(t, l, family, "filter"); after != before {
				t.Errorf("Ensure(Dump()) changed the tables:\n%s", cmp.Diff(before, after))
			}

			// A change replaces rules; a chain and a jump dropped from the ruleset go.
			rs2 := ruleset("0x8000")
			rs2.Chains = rs2.Chains[:3]
			rs2.Jumps = rs2.Jumps[:3]
			for i := range rs2.Chains {
				for j, r := range rs2.Chains[i].Rules {
					rs2.Chains[i].Rules[j] = strings.ReplaceAll(r, "KUBE-CLUSTER-IP", "KUBE-CLUSTER-IP"+f)
				}
			}
			if err := l.Ensure(family, rs2); err != nil {
				t.Fatalf("Ensure with changes: %v", err)
			}
			got, err := l.Dump(family)
			if err != nil {
				t.Fatal(err)
			}
			wantMasq := []string{"-j MARK --set-xmark 0x8000/0x8000"}
			for _, c := range got.Chains {
				if c.Name == "KUBE-MARK-MASQ" && !cmp.Equal(c.Rules, wantMasq) {
					t.Errorf("KUBE-MARK-MASQ = %q, want %q", c.Rules, wantMasq)
				}
				if c.Name == "KUBE-IPVS-FILTER" {
					t.Errorf("stale chain KUBE-IPVS-FILTER survived")
				}
			}
			if len(got.Chains) != 3 || len(got.Jumps) != 3 {
				t.Errorf("Dump after change = %+v, want 3 chains and 3 jumps", got)
			}

			// Cleanup removes ours and only ours.
			if err := l.Cleanup(family); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			nat, filter = save(t, l, family, "nat"), save(t, l, family, "filter")
			if strings.Contains(nat+filter, "KUBE-SERVICES") || strings.Contains(nat+filter, "KUBE-MARK-MASQ") {
				t.Errorf("Cleanup left kubevs rules:\n%s%s", nat, filter)
			}
			for _, want := range []string{"-A PREROUTING -j FOREIGN", "-A FOREIGN -j RETURN"} {
				if !strings.Contains(nat, want) {
					t.Errorf("Cleanup removed foreign %q:\n%s", want, nat)
				}
			}
			if !strings.Contains(filter, "-A INPUT -j KUBE-FIREWALL") || !strings.Contains(filter, "-A KUBE-FIREWALL -j RETURN") {
				t.Errorf("Cleanup touched the kubelet's KUBE-FIREWALL:\n%s", filter)
			}
			if err := l.Cleanup(family); err != nil {
				t.Errorf("second Cleanup: %v", err)
			}
		}
	})
}

func TestLinuxEnsureFailsWhole(t *testing.T) {
	backends(t, func(t *testing.T, l *Linux) {
		prefix := "iptables" + map[Backend]string{BackendNFT: "-nft", BackendLegacy: "-legacy"}[l.Backend()]
		if err := l.Ensure(ipset.IPv4, ruleset("0x4000")); err == nil {
			t.Fatalf("Ensure with -m set against a missing set succeeded")
		}
		run(t, "ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port")
		if err := l.Ensure(ipset.IPv4, ruleset("0x4000")); err != nil {
			t.Fatal(err)
		}
		// A foreign chain jumps to one of ours: deleting ours fails, and the batch as a whole
		// leaves the table as it was.
		run(t, prefix, "-w", "-t", "nat", "-N", "FOREIGN")
		run(t, prefix, "-w", "-t", "nat", "-A", "FOREIGN", "-j", "KUBE-POSTROUTING")
		before := save(t, l, ipset.IPv4, "nat")
		rs := ruleset("0x4000")
		rs.Chains = rs.Chains[:2]
		rs.Jumps = rs.Jumps[:2]
		if err := l.Ensure(ipset.IPv4, rs); err == nil {
			t.Errorf("Ensure deleted a chain a foreign chain jumps to")
		}
		if after := save(t, l, ipset.IPv4, "nat"); after != before {
			t.Errorf("a failed batch changed the table:\n%s", cmp.Diff(before, after))
		}
	})
}

func TestLinuxEnsureRejectsForeignChain(t *testing.T) {
	backends(t, func(t *testing.T, l *Linux) {
		err := l.Ensure(ipset.IPv4, Ruleset{Chains: []Chain{{Table: "filter", Name: "KUBE-FIREWALL"}}})
		if err == nil {
			t.Fatalf("Ensure accepted a chain kubevs does not own")
		}
		if out := save(t, l, ipset.IPv4, "filter"); strings.Contains(out, "KUBE-FIREWALL") {
			t.Errorf("a rejected ruleset was written:\n%s", out)
		}
	})
}

func TestNewDetectsBackend(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "iptables", "--version")
	if want := strings.Contains(out, "nf_tables"); want != (l.Backend() == BackendNFT) {
		t.Errorf("iptables --version = %q, detected %s", out, l.Backend())
	}
	t.Logf("iptables on PATH: %s-> backend %s, tools %+v", out, l.Backend(), l.bins)
}
