//go:build linux

package netfilter

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// TestKubeProxyServesFeedsTheRulesCheck: Start's two reads of a restarted node (is kube-proxy
// still serving? do the tables hold kubevs's rules?) cost one iptables-save per family with
// nf_tables: the rules check takes the tables the first read printed. A change by anyone in
// between moves the generation, and the check reads again and repairs it. Legacy reads again,
// unless the reads are held (HoldReads, as Start does): then a change in between is found by
// the first check after the hold.
func TestKubeProxyServesFeedsTheRulesCheck(t *testing.T) {
	backends(t, func(t *testing.T, l *Linux) {
		prefix := "iptables" + map[Backend]string{BackendNFT: "-nft", BackendLegacy: "-legacy"}[l.Backend()]
		legacy := l.Backend() == BackendLegacy
		run(t, "ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port", "family", "inet")
		rs := ruleset("0x4000")
		if err := l.Ensure(ipset.IPv4, rs); err != nil {
			t.Fatal(err)
		}
		tables := len(Tables())
		rereads := 0 // the rules check's iptables-save runs after KubeProxyServes, unheld
		if legacy {
			rereads = tables
		}
		flush := []string{prefix, "-w", "-t", "nat", "-F", "KUBE-POSTROUTING"}
		for _, step := range []struct {
			name        string
			hold        bool
			between     []string // a foreign command between the two reads
			wantSaves   int
			wantRepairs []string
			wantAfter   []string // the Repair after the hold
		}{
			{name: "nothing changed", wantSaves: 1 + rereads},
			{name: "nothing changed, held", hold: true, wantSaves: 1},
			// Read again, and nat read back.
			{name: "flushed in between", between: flush, wantSaves: 1 + tables + 1, wantRepairs: []string{"nat"}},
			{name: "flushed in between, held", hold: true, between: flush,
				wantSaves: map[bool]int{false: 1 + tables + 1, true: 1}[legacy], wantRepairs: map[bool][]string{false: {"nat"}}[legacy],
				wantAfter: map[bool][]string{true: {"nat"}}[legacy]},
		} {
			restarted, err := NewBackend(l.Backend())
			if err != nil {
				t.Fatal(err)
			}
			release := func() {}
			if step.hold {
				release = restarted.HoldReads()
			}
			if serves, err := restarted.KubeProxyServes(ipset.IPv4); err != nil || serves {
				t.Fatalf("%s: KubeProxyServes = %v, %v; want false", step.name, serves, err)
			}
			if step.between != nil {
				run(t, step.between[0], step.between[1:]...)
			}
			got, err := restarted.Repair(ipset.IPv4, rs)
			if err != nil || !slices.Equal(got, step.wantRepairs) {
				t.Errorf("%s: Repair = %v, %v; want %v", step.name, got, err, step.wantRepairs)
			}
			if runs := restarted.Runs(); runs.Saves != step.wantSaves {
				t.Errorf("%s: %d iptables-save runs, want %d", step.name, runs.Saves, step.wantSaves)
			}
			release()
			// After the hold, whatever the hold did not see is repaired.
			if got, err := restarted.Repair(ipset.IPv4, rs); err != nil || !slices.Equal(got, step.wantAfter) {
				t.Errorf("%s: Repair after it = %v, %v; want %v", step.name, got, err, step.wantAfter)
			}
			if d, err := restarted.Verify(ipset.IPv4, rs); err != nil || len(d) != 0 {
				t.Errorf("%s: Verify at the end = %v, %v; want nothing", step.name, d, err)
			}
		}
	})
}

// TestWriteKeepsSnapshotsOnlyThroughItsOwnCommit drives write with scripted tools and a
// scripted generation (each line a restore appends to a file is a commit): the snapshots of
// the other tables survive kubevs's restore only when it is the one commit in between.
func TestWriteKeepsSnapshotsOnlyThroughItsOwnCommit(t *testing.T) {
	for _, tt := range []struct {
		name    string
		restore string
		// The iptables-save runs of reading filter and nat again after writing nat.
		wantSaves int
	}{
		{"one commit: kubevs's", "cat >/dev/null; echo commit >>$COMMITS", 1},
		{"another commit in between", "cat >/dev/null; echo other >>$COMMITS; echo commit >>$COMMITS", 2},
		{"the restore failed", "cat >/dev/null; exit 1", 2},
		{"nothing committed", "cat >/dev/null", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			commits := filepath.Join(t.TempDir(), "commits")
			if err := os.WriteFile(commits, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv("COMMITS", commits)
			fakeTools(t, "echo '*'$2; echo ':INPUT ACCEPT [0:0]'; echo COMMIT", tt.restore)
			l, err := NewBackend(BackendNFT)
			if err != nil {
				t.Fatal(err)
			}
			l.gen = func() (uint32, error) {
				b, err := os.ReadFile(commits)
				return uint32(strings.Count(string(b), "\n")), err
			}
			for _, name := range Tables() {
				if _, err := l.read(ipset.IPv4, name); err != nil {
					t.Fatal(err)
				}
			}
			saves := l.saves
			werr := l.write(ipset.IPv4, "nat", []string{"*nat", "COMMIT"})
			if (werr != nil) != strings.Contains(tt.restore, "exit 1") {
				t.Fatalf("write = %v", werr)
			}
			for _, name := range Tables() {
				if _, err := l.read(ipset.IPv4, name); err != nil {
					t.Fatal(err)
				}
			}
			if got := l.saves - saves; got != tt.wantSaves {
				t.Errorf("reads after the write: %d iptables-save runs, want %d", got, tt.wantSaves)
			}
		})
	}
}

// Dump reads the filter and nat tables of a family with one iptables-save, not one per table:
// `kubevs status` runs it in a fresh process, with no snapshot to take.
func TestDumpRunsOneSavePerFamily(t *testing.T) {
	fakeTools(t, `tables="$2"; [ -z "$tables" ] && tables="filter nat mangle"
for t in $tables; do
  echo "*$t"; echo ':OUTPUT ACCEPT [0:0]'
  [ "$t" = nat ] && echo ':KUBE-SERVICES - [0:0]' && echo '-A OUTPUT -j KUBE-SERVICES' && echo '-A KUBE-SERVICES -j RETURN'
  echo COMMIT
done`, "cat >/dev/null")
	l, err := NewBackend(BackendNFT)
	if err != nil {
		t.Fatal(err)
	}
	l.gen = nil // no generation: every read is a save
	for _, family := range []Family{ipset.IPv4, ipset.IPv6} {
		saves := l.saves
		rs, err := l.Dump(family)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.saves - saves; got != 1 {
			t.Errorf("%s: Dump ran iptables-save %d times, want 1", family, got)
		}
		want := Ruleset{Chains: []Chain{{Table: "nat", Name: "KUBE-SERVICES", Rules: []string{"-j RETURN"}}},
			Jumps: []Jump{{Table: "nat", From: "OUTPUT", To: "KUBE-SERVICES"}}}
		if !slices.EqualFunc(rs.Chains, want.Chains, func(a, b Chain) bool { return a.Table == b.Table && a.Name == b.Name && len(a.Rules) == len(b.Rules) }) ||
			!slices.EqualFunc(rs.Jumps, want.Jumps, func(a, b Jump) bool { return a.Table == b.Table && a.From == b.From && a.To == b.To }) {
			t.Errorf("%s: Dump = %+v, want %+v", family, rs, want)
		}
	}
}
