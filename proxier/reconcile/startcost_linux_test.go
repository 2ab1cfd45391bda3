package reconcile

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/proxier/sysctl/sysctltest"
)

// startRuns are the iptables processes (netfilter.Runs) of one proxier life: Start, the first
// Resync, and a periodic resync after it (the read apart, as the daemon runs it).
type startRuns struct{ Start, FirstResync, Periodic netfilter.Runs }

// phaseTimes are the wall times of the same three steps, for the log.
type phaseTimes struct{ Start, FirstResync, Periodic time.Duration }

// TestStartProcessesOnTheHostKernel counts the iptables-save and iptables-restore processes
// of Start, the first Resync and a periodic resync on a dual-stack node, with each backend,
// on the host kernel in a fresh netns (IPVS and the dummy link stay fakes): on an empty node,
// then on the same node after a restart (a new Linux, which remembers nothing, and a new
// Reconciler over the kernel the first left). Under emulation each process costs 1-2 s.
func TestStartProcessesOnTheHostKernel(t *testing.T) {
	opts := desired.Options{
		Families:     []ipset.Family{ipset.IPv4, ipset.IPv6},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/56")},
		StrictARP:    true,
	}
	type runs = netfilter.Runs
	want := map[netfilter.Backend]map[string]startRuns{
		netfilter.BackendNFT: {
			"empty":   {Start: runs{Saves: 4, Restores: 4}, FirstResync: runs{}, Periodic: runs{}},
			"restart": {Start: runs{Saves: 2}, FirstResync: runs{}, Periodic: runs{}},
		},
		netfilter.BackendLegacy: {
			"empty":   {Start: runs{Saves: 4, Restores: 4}, FirstResync: runs{Saves: 6}, Periodic: runs{Saves: 4}},
			"restart": {Start: runs{Saves: 2}, FirstResync: runs{Saves: 6}, Periodic: runs{Saves: 4}},
		},
	}
	for _, b := range []netfilter.Backend{netfilter.BackendNFT, netfilter.BackendLegacy} {
		t.Run(string(b), func(t *testing.T) {
			testenv.EnterNetns(t)
			f := newFakes() // the kernel's IPVS, links, sysctls: kept across the restart
			sysctls := fixture.Sysctls()
			sysctls["net/ipv6/conf/all/forwarding"] = "1"
			f.sysctl = sysctltest.NewFake(sysctls)
			for _, life := range []string{"empty", "restart"} {
				nf, err := netfilter.NewBackend(b)
				if err != nil {
					t.Fatal(err)
				}
				k := f.kernel()
				k.IPSet, k.Netfilter, k.KubeProxyChains = ipset.New(), nf, nf
				r := New(k, Options{Desired: opts})
				c := ctx(t)
				var got startRuns
				var took phaseTimes
				t0 := time.Now()
				lap := func() time.Duration { d := time.Since(t0).Round(time.Millisecond); t0 = time.Now(); return d }
				since := func(before netfilter.Runs) netfilter.Runs {
					now := nf.Runs()
					return netfilter.Runs{Saves: now.Saves - before.Saves, Restores: now.Restores - before.Restores}
				}
				before := nf.Runs()
				lap()
				must(t, r.Start(c))
				took.Start, got.Start = lap(), since(before)
				before = nf.Runs()
				must(t, r.Resync(c, all(t, web, dns)))
				took.FirstResync, got.FirstResync = lap(), since(before)
				before = nf.Runs()
				must(t, readThenResync(c, r, all(t, web, dns)))
				took.Periodic, got.Periodic = lap(), since(before)
				t.Logf("%s, %s node, 2 families: %+v, took %+v", b, life, got, took)
				if diff := cmp.Diff(want[b][life], got); diff != "" {
					t.Errorf("%s node: iptables processes (-want +got):\n%s", life, diff)
				}
				if len(r.Degraded()) != 0 {
					t.Errorf("%s node: degraded: %v", life, r.Degraded())
				}
			}
		})
	}
}
