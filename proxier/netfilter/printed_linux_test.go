//go:build linux

package netfilter

import (
	"strings"
	"testing"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// TestLinuxRestartAdoptsItsRules: a new Linux (a restarted proxier, no memo) finds the rules
// the last one wrote, --or-mark, --xor-mark and a bare REJECT included, already in place: it
// runs no iptables-restore, in either family, with either backend.
func TestLinuxRestartAdoptsItsRules(t *testing.T) {
	backends(t, func(t *testing.T, l *Linux) {
		for _, fam := range []struct {
			family  Family
			setType string
		}{{ipset.IPv4, "inet"}, {ipset.IPv6, "inet6"}} {
			set := "KUBE-CLUSTER-IP-" + fam.setType
			run(t, "ipset", "create", set, "hash:ip,port", "family", fam.setType)
			rs := ruleset("0x4000")
			for i := range rs.Chains {
				for j, r := range rs.Chains[i].Rules {
					rs.Chains[i].Rules[j] = strings.ReplaceAll(r, "--match-set KUBE-CLUSTER-IP ", "--match-set "+set+" ")
				}
			}
			rs.Chains[3].Rules = append(rs.Chains[3].Rules, "-m conntrack --ctstate NEW -m set --match-set "+set+" dst,dst -j REJECT")
			if err := l.Ensure(fam.family, rs); err != nil {
				t.Fatalf("%s: Ensure: %v", fam.family, err)
			}
			restarted, err := NewBackend(l.Backend())
			if err != nil {
				t.Fatal(err)
			}
			if err := restarted.Ensure(fam.family, rs); err != nil {
				t.Fatalf("%s: Ensure after a restart: %v", fam.family, err)
			}
			if n := restarted.Runs().Restores; n != 0 {
				t.Errorf("%s: Ensure after a restart ran iptables-restore %d times, want 0", fam.family, n)
			}
		}
	})
}
