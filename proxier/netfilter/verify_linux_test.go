//go:build linux

package netfilter

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// TestLinuxVerify: Verify names the tables someone else changed (a flushed chain) and writes
// nothing; Repair then rewrites exactly those and Verify finds nothing again.
func TestLinuxVerify(t *testing.T) {
	backends(t, func(t *testing.T, l *Linux) {
		prefix := "iptables" + map[Backend]string{BackendNFT: "-nft", BackendLegacy: "-legacy"}[l.Backend()]
		run(t, "ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port", "family", "inet")
		rs := ruleset("0x4000")
		if err := l.Ensure(ipset.IPv4, rs); err != nil {
			t.Fatalf("Ensure: %v", err)
		}
		differ, err := l.Verify(ipset.IPv4, rs)
		if err != nil || len(differ) != 0 {
			t.Fatalf("Verify after Ensure = %v, %v; want none", differ, err)
		}
		run(t, prefix, "-w", "-t", "nat", "-F", "KUBE-POSTROUTING")
		before, restores := save(t, l, ipset.IPv4, "nat"), l.restores
		differ, err = l.Verify(ipset.IPv4, rs)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"nat"}, differ); diff != "" {
			t.Errorf("Verify after a flush (-want +got):\n%s", diff)
		}
		if l.restores != restores || save(t, l, ipset.IPv4, "nat") != before {
			t.Errorf("Verify wrote: %d restores", l.restores-restores)
		}
		if strings.Contains(before, "-A KUBE-POSTROUTING") {
			t.Fatalf("the flush left rules:\n%s", before)
		}
		if got, err := l.Repair(ipset.IPv4, rs); err != nil || !cmp.Equal(got, []string{"nat"}) {
			t.Fatalf("Repair = %v, %v; want [nat]", got, err)
		}
		if differ, err := l.Verify(ipset.IPv4, rs); err != nil || len(differ) != 0 {
			t.Errorf("Verify after Repair = %v, %v; want none", differ, err)
		}
	})
}
