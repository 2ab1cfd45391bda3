package reconcile

import (
	"context"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/link"
)

// What someone else does to the kernel behind kubevs's back (iptables -F, a firewalld
// reload, ipset flush, ip addr del, ip link del) is put back by the next Resync, exactly:
// the whole fake kernel is as before, the writes are only the repair, and Drift counts it.
func TestResyncRepairsDrift(t *testing.T) {
	testRepairsDrift(t, func(c context.Context, r *Reconciler, all map[types.NamespacedName]desired.Service) error {
		return r.Resync(c, all)
	})
}

// driftCase is something done behind kubevs's back, the writes that repair it and the drift
// counted.
type driftCase struct {
	name  string
	drift func(t *testing.T, f *fakes)
	ops   []string
	want  Drift
}

// testRepairsDrift runs the drift cases with resync as the resync.
func testRepairsDrift(t *testing.T, resync func(context.Context, *Reconciler, map[types.NamespacedName]desired.Service) error) {
	dummy := link.DefaultDummy
	for _, tc := range []driftCase{
		{name: "no drift", drift: func(*testing.T, *fakes) {}},
		{
			name:  "iptables -t nat -F KUBE-SERVICES",
			drift: func(t *testing.T, f *fakes) { must(t, f.nf.Flush(ipset.IPv4, "nat", "KUBE-SERVICES")) },
			ops:   []string{"restore inet nat"},
			want:  Drift{Rules: 1},
		},
		{
			name: "iptables -F and -t nat -F (jumps from the built-in chains too)",
			drift: func(t *testing.T, f *fakes) {
				must(t, f.nf.Flush(ipset.IPv4, "filter", ""))
				must(t, f.nf.Flush(ipset.IPv4, "nat", ""))
			},
			ops:  []string{"restore inet filter", "restore inet nat"},
			want: Drift{Rules: 2},
		},
		{
			name:  "ipset flush KUBE-CLUSTER-IP",
			drift: func(t *testing.T, f *fakes) { must(t, f.ipset.Flush("KUBE-CLUSTER-IP")) },
			ops:   []string{"add KUBE-CLUSTER-IP 10.96.0.10,tcp:80 10.96.0.53,tcp:53 10.96.0.53,udp:53"},
			want:  Drift{SetMembers: 3},
		},
		{
			name: "rules flushed, then ipset destroy KUBE-LOOP-BACK",
			drift: func(t *testing.T, f *fakes) {
				must(t, f.nf.Flush(ipset.IPv4, "nat", ""))
				must(t, f.ipset.Remove("KUBE-LOOP-BACK"))
			},
			ops: []string{
				"create KUBE-LOOP-BACK hash:ip,port,ip inet",
				"add KUBE-LOOP-BACK 10.244.0.3,tcp:8080,10.244.0.3",
				"restore inet nat",
			},
			want: Drift{Rules: 1, Sets: 1, SetMembers: 1},
		},
		{
			name:  "ip addr del",
			drift: func(t *testing.T, f *fakes) { must(t, f.link.RemoveAddress(dummy, netip.MustParseAddr("10.96.0.53"))) },
			ops:   []string{"add-addr kube-ipvs0 10.96.0.53"},
			want:  Drift{Addresses: 1},
		},
		{
			name: "an address swapped for another (as many as before: the probe hashes them)",
			drift: func(t *testing.T, f *fakes) {
				must(t, f.link.RemoveAddress(dummy, netip.MustParseAddr("10.96.0.53")))
				must(t, f.link.InjectAddress(dummy, netip.MustParseAddr("10.96.0.99")))
			},
			ops:  []string{"add-addr kube-ipvs0 10.96.0.53", "delete-addr kube-ipvs0 10.96.0.99"},
			want: Drift{Addresses: 1},
		},
		{
			name:  "ip link del kube-ipvs0",
			drift: func(t *testing.T, f *fakes) { must(t, f.link.Remove(dummy)) },
			// ensure-dummy (dropped from writes) creates it again.
			ops:  []string{"add-addr kube-ipvs0 10.96.0.10", "add-addr kube-ipvs0 10.96.0.53"},
			want: Drift{Addresses: 2},
		},
		{
			name:  "ip link set kube-ipvs0 down",
			drift: func(t *testing.T, f *fakes) { must(t, f.link.SetDown(dummy)) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, r := startSynced(t, web, dns)
			c := ctx(t)
			// A second Resync with nothing changed is the reference: no write at all.
			must(t, resync(c, r, all(t, web, dns)))
			f.checkOps(t, "resync without drift", nil)
			before := f.dump()
			tc.drift(t, f)
			must(t, resync(c, r, all(t, web, dns)))
			f.checkOps(t, "resync after drift", tc.ops)
			if diff := cmp.Diff(before, f.dump()); diff != "" {
				t.Errorf("kernel after repair (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, r.Drift()); diff != "" {
				t.Errorf("Drift (-want +got):\n%s", diff)
			}
			must(t, resync(c, r, all(t, web, dns)))
			f.checkOps(t, "resync after repair", nil)
		})
	}
}
