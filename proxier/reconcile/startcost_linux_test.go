package reconcile

import (
	"net/netip"
	"os/exec"
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
// on the host kernel in a fresh netns (IPVS and the dummy link stay fakes): on an empty node;
// after a restart (a new Linux, which remembers nothing, and a new Reconciler over the
// kernel a first life left); and on a node kube-proxy's iptables mode left serving (the
// rules wait for the first Resync, which then removes its chains). Under emulation each
// process costs 1-2 s.
func TestStartProcessesOnTheHostKernel(t *testing.T) {
	type runs = netfilter.Runs
	want := map[netfilter.Backend]map[string]startRuns{
		netfilter.BackendNFT: {
			"empty":      {Start: runs{Saves: 4, Restores: 4}, FirstResync: runs{}, Periodic: runs{}},
			"restart":    {Start: runs{Saves: 2}, FirstResync: runs{}, Periodic: runs{}},
			"kube-proxy": {Start: runs{Saves: 1}, FirstResync: runs{Saves: 4, Restores: 8}, Periodic: runs{Saves: 4}},
		},
		netfilter.BackendLegacy: {
			"empty":      {Start: runs{Saves: 4, Restores: 4}, FirstResync: runs{Saves: 6}, Periodic: runs{Saves: 4}},
			"restart":    {Start: runs{Saves: 2}, FirstResync: runs{Saves: 6}, Periodic: runs{Saves: 4}},
			"kube-proxy": {Start: runs{Saves: 1}, FirstResync: runs{Saves: 8, Restores: 8}, Periodic: runs{Saves: 4}},
		},
	}
	for _, b := range []netfilter.Backend{netfilter.BackendNFT, netfilter.BackendLegacy} {
		for _, node := range []string{"empty", "restart", "kube-proxy"} {
			t.Run(string(b)+"/"+node, func(t *testing.T) {
				testenv.EnterNetns(t)
				f := newFakes() // the kernel's IPVS, links, sysctls: kept across a restart
				sysctls := fixture.Sysctls()
				sysctls["net/ipv6/conf/all/forwarding"] = "1"
				f.sysctl = sysctltest.NewFake(sysctls)
				switch node {
				case "restart":
					proxierLife(t, f, b)
				case "kube-proxy":
					kubeProxyServing(t, b)
				}
				got, took := proxierLife(t, f, b)
				t.Logf("%s, %s node, 2 families: %+v, took %+v", b, node, got, took)
				if diff := cmp.Diff(want[b][node], got); diff != "" {
					t.Errorf("%s node: iptables processes (-want +got):\n%s", node, diff)
				}
			})
		}
	}
}

// proxierLife starts a Reconciler with a new netfilter.Linux of backend b over f's kernel,
// runs its first Resync and one periodic resync, and returns the processes of each.
func proxierLife(t *testing.T, f *fakes, b netfilter.Backend) (startRuns, phaseTimes) {
	t.Helper()
	opts := desired.Options{
		Families:     []ipset.Family{ipset.IPv4, ipset.IPv6},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/56")},
		StrictARP:    true,
	}
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
	before, t0 := nf.Runs(), time.Now()
	lap := func() (netfilter.Runs, time.Duration) {
		now, d := nf.Runs(), time.Since(t0).Round(time.Millisecond)
		ran := netfilter.Runs{Saves: now.Saves - before.Saves, Restores: now.Restores - before.Restores}
		before, t0 = now, time.Now()
		return ran, d
	}
	must(t, r.Start(c))
	got.Start, took.Start = lap()
	must(t, r.Resync(c, all(t, web, dns)))
	got.FirstResync, took.FirstResync = lap()
	must(t, readThenResync(c, r, all(t, web, dns)))
	got.Periodic, took.Periodic = lap()
	if len(r.Degraded()) != 0 {
		t.Errorf("degraded: %v", r.Degraded())
	}
	return got, took
}

// kubeProxyServing leaves in both families what kube-proxy's iptables mode leaves when it
// stops without --cleanup: nat KUBE-SERVICES jumping to a Service chain, and filter
// KUBE-EXTERNAL-SERVICES.
func kubeProxyServing(t *testing.T, b netfilter.Backend) {
	t.Helper()
	suffix := map[netfilter.Backend]string{netfilter.BackendNFT: "-nft", netfilter.BackendLegacy: "-legacy"}[b]
	for _, cmd := range []string{"iptables" + suffix, "ip6tables" + suffix} {
		for _, args := range [][]string{
			{"-t", "nat", "-N", "KUBE-SERVICES"},
			{"-t", "nat", "-N", "KUBE-SVC-ABCDEFGHIJKLMNOP"},
			{"-t", "nat", "-A", "KUBE-SVC-ABCDEFGHIJKLMNOP", "-j", "RETURN"},
			{"-t", "nat", "-A", "KUBE-SERVICES", "-p", "tcp", "--dport", "80", "-j", "KUBE-SVC-ABCDEFGHIJKLMNOP"},
			{"-t", "nat", "-A", "PREROUTING", "-j", "KUBE-SERVICES"},
			{"-t", "filter", "-N", "KUBE-EXTERNAL-SERVICES"},
			{"-t", "filter", "-A", "INPUT", "-j", "KUBE-EXTERNAL-SERVICES"},
		} {
			if out, err := exec.Command(cmd, append([]string{"-w"}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("%s %v: %v\n%s", cmd, args, err, out)
			}
		}
	}
}
