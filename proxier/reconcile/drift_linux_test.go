package reconcile

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// On the host's kernel, in a fresh netns, with each iptables backend: what `iptables -t nat
// -F KUBE-SERVICES`, `iptables -F` (the filter table whole, jumps from INPUT and FORWARD
// included) and `ipset flush` take away is put back by the next Resync, and the Resync after
// that rewrites nothing.
func TestResyncRepairsFlushedRulesOnTheHostKernel(t *testing.T) {
	testRepairsFlushedRules(t, func(c context.Context, r *Reconciler, all map[types.NamespacedName]desired.Service) error {
		return r.Resync(c, all)
	})
}

// TestResyncReadRepairsFlushedRulesOnTheHostKernel: the same, with the kernel read apart
// (BeginRead, Run, ResyncRead) through the real iptables and ipset.
func TestResyncReadRepairsFlushedRulesOnTheHostKernel(t *testing.T) {
	testRepairsFlushedRules(t, readThenResync)
}

func testRepairsFlushedRules(t *testing.T, resync func(context.Context, *Reconciler, map[types.NamespacedName]desired.Service) error) {
	for _, b := range []netfilter.Backend{netfilter.BackendNFT, netfilter.BackendLegacy} {
		t.Run(string(b), func(t *testing.T) {
			testenv.EnterNetns(t)
			nf, err := netfilter.NewBackend(b)
			if err != nil {
				t.Fatal(err)
			}
			f := newFakes()
			k := f.kernel()
			k.IPSet, k.Netfilter = ipset.New(), nf
			r := New(k, Options{Desired: testOpts})
			c := ctx(t)
			must(t, r.Start(c))
			must(t, resync(c, r, all(t, web, dns)))
			iptables := "iptables" + map[netfilter.Backend]string{netfilter.BackendNFT: "-nft", netfilter.BackendLegacy: "-legacy"}[b]
			save := func() string {
				t.Helper()
				var keep []string
				for _, table := range []string{"filter", "nat"} {
					out, err := exec.Command(iptables+"-save", "-t", table).CombinedOutput()
					if err != nil {
						t.Fatalf("%s-save: %v\n%s", iptables, err, out)
					}
					for _, l := range strings.Split(string(out), "\n") {
						if l != "" && !strings.HasPrefix(l, "#") {
							keep = append(keep, l)
						}
					}
				}
				out, err := exec.Command("ipset", "list", "KUBE-CLUSTER-IP").CombinedOutput()
				if err != nil {
					t.Fatalf("ipset list: %v\n%s", err, out)
				}
				for _, l := range strings.Split(string(out), "\n") {
					if strings.Contains(l, ",") { // the members
						keep = append(keep, "member "+l)
					}
				}
				return strings.Join(keep, "\n")
			}
			before := save()
			if !strings.Contains(before, "-j KUBE-SERVICES") || !strings.Contains(before, "member 10.96.0.10,tcp:80") {
				t.Fatalf("the first Resync did not program rules and members:\n%s", before)
			}
			for _, cmd := range [][]string{
				{iptables, "-w", "-t", "nat", "-F", "KUBE-SERVICES"},
				{iptables, "-w", "-F"},
				{"ipset", "flush", "KUBE-CLUSTER-IP"},
			} {
				if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
				}
			}
			if save() == before {
				t.Fatalf("the flushes changed nothing")
			}
			t0 := time.Now()
			must(t, resync(c, r, all(t, web, dns)))
			repair := time.Since(t0)
			if diff := cmp.Diff(before, save()); diff != "" {
				t.Errorf("after the repairing Resync (-before +after):\n%s", diff)
			}
			want := Drift{Rules: 2, SetMembers: 3}
			if diff := cmp.Diff(want, r.Drift()); diff != "" {
				t.Errorf("Drift (-want +got):\n%s", diff)
			}
			t0 = time.Now()
			must(t, resync(c, r, all(t, web, dns)))
			t.Logf("%s: repairing Resync %s, Resync without drift %s", b, repair.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
			if diff := cmp.Diff(want, r.Drift()); diff != "" {
				t.Errorf("a Resync without drift repaired something (-want +got):\n%s", diff)
			}
		})
	}
}
