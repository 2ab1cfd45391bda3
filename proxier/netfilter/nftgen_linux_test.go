//go:build linux

package netfilter

import (
	"slices"
	"testing"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipset"
)

// TestNFTGenerationMovesWithACommit: the generation stays while nothing is committed (a
// read by iptables-nft-save commits nothing) and moves with a change made by iptables-nft.
func TestNFTGenerationMovesWithACommit(t *testing.T) {
	testenv.EnterNetns(t)
	g1, err := nftGeneration()
	if err != nil {
		t.Fatal(err)
	}
	run(t, "iptables-nft-save", "-t", "nat")
	if g2, err := nftGeneration(); err != nil || g2 != g1 {
		t.Fatalf("generation after a read = %d, %v; want %d", g2, err, g1)
	}
	run(t, "iptables-nft", "-w", "-t", "nat", "-N", "FOREIGN")
	g3, err := nftGeneration()
	if err != nil {
		t.Fatal(err)
	}
	if g3 == g1 {
		t.Errorf("generation %d did not move with a new chain", g3)
	}
}

// TestVerifySkipsReadWhileGenerationStays: with nf_tables, a Verify or Repair runs no
// iptables-save while the generation stays, whatever ruleset it checks, nor after kubevs's
// own writes (each moves the generation by one); a change by anyone else (a flush) makes it
// read again. Legacy iptables always reads.
func TestVerifySkipsReadWhileGenerationStays(t *testing.T) {
	backends(t, func(t *testing.T, l *Linux) {
		prefix := "iptables" + map[Backend]string{BackendNFT: "-nft", BackendLegacy: "-legacy"}[l.Backend()]
		run(t, "ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port", "family", "inet")
		rs := ruleset("0x4000")
		saves := l.saves
		if err := l.Ensure(ipset.IPv4, rs); err != nil {
			t.Fatal(err)
		}
		tables := len(Tables())
		// Each table read and written, then both read back in one iptables-save.
		if got := l.saves - saves; got != tables+1 {
			t.Errorf("Ensure on empty tables: %d iptables-save runs, want %d", got, tables+1)
		}
		verify := func(step string, rs Ruleset, wantSaves int, want ...string) {
			t.Helper()
			saves := l.saves
			differ, err := l.Verify(ipset.IPv4, rs)
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			if !slices.Equal(differ, want) {
				t.Errorf("%s: Verify = %v, want %v", step, differ, want)
			}
			if got := l.saves - saves; got != wantSaves {
				t.Errorf("%s: %d iptables-save runs, want %d", step, got, wantSaves)
			}
		}
		skip := 0 // saves when the generation lets Verify skip the read
		if l.Backend() == BackendLegacy {
			skip = tables
		}
		verify("after Ensure's writes", rs, skip)
		verify("nothing changed", rs, skip)
		verify("nothing changed, again", rs, skip)
		verify("another ruleset", ruleset("0x8000"), skip, "nat")
		verify("back to the first", rs, skip)
		run(t, prefix, "-w", "-t", "nat", "-F", "KUBE-POSTROUTING")
		verify("after a flush", rs, tables, "nat")
		saves = l.saves
		if got, err := l.Repair(ipset.IPv4, rs); err != nil || !slices.Equal(got, []string{"nat"}) {
			t.Fatalf("Repair = %v, %v; want [nat]", got, err)
		}
		// nf_tables: the tables Verify read, then nat read back; legacy: both read, nat back.
		if got, want := l.saves-saves, 1+skip; got != want {
			t.Errorf("Repair after a flush: %d iptables-save runs, want %d", got, want)
		}
		verify("after the repair", rs, skip)
		verify("nothing changed since", rs, skip)
		saves = l.saves
		if got, err := l.Repair(ipset.IPv4, rs); err != nil || len(got) != 0 {
			t.Fatalf("Repair = %v, %v; want nothing", got, err)
		}
		if got := l.saves - saves; got != skip {
			t.Errorf("Repair with nothing changed: %d iptables-save runs, want %d", got, skip)
		}
	})
}
