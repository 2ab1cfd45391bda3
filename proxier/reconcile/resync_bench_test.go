package reconcile

import (
	"fmt"
	"testing"

	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link/linktest"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
)

// BenchmarkPeriodicResync measures the periodic full resync of a proxier whose kernel
// already holds everything (nothing to repair): N Services x 10 endpoints on the fakes. Besides
// time and CPU it counts the kernel reads one resync issues: IPVS dumps (list-vs, list-rs),
// ipset and address dumps, and iptables-save runs (one per table and family each time the
// fixed rules are checked; iptables-save/op is the process starts on a real node).
func BenchmarkPeriodicResync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			w := newBenchWorld(n)
			c := quiet()
			f := newFakes()
			all := w.all(b)
			r := f.reconciler()
			if err := r.Start(c); err != nil {
				b.Fatal(err)
			}
			if err := r.Resync(c, all); err != nil {
				b.Fatal(err)
			}
			f.reset()
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := r.Resync(c, all); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime() - c0
			b.StopTimer()
			if ws := f.writes(); len(ws) > 0 {
				b.Fatalf("a resync of an unchanged kernel wrote: %q", ws[:min(len(ws), 5)])
			}
			perOp := func(calls int) float64 { return float64(calls) / float64(b.N) }
			b.ReportMetric(perOp(f.ipvs.Calls(ipvstest.OpVirtualServers)), "list-vs/op")
			b.ReportMetric(perOp(f.ipvs.Calls(ipvstest.OpRealServers)), "list-rs/op")
			b.ReportMetric(perOp(f.ipset.Calls(ipsettest.OpSets)+f.ipset.Calls(ipsettest.OpList)), "ipset-dumps/op")
			b.ReportMetric(perOp(f.link.Calls(linktest.OpAddresses)), "addr-dumps/op")
			b.ReportMetric(perOp(f.nf.Calls(netfiltertest.OpEnsure)*len(netfilter.Tables())), "iptables-save/op")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
