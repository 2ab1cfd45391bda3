package reconcile

import (
	"fmt"
	"testing"
	"time"

	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link/linktest"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
)

// BenchmarkPeriodicResync measures the periodic full resync of a proxier whose kernel
// already holds everything (nothing to repair): N Services x 10 endpoints on the fakes.
//
//	read=locked: Resync, every read under the caller's lock (as before reading.go).
//	read=apart:  BeginRead, Run (not timed: no lock held: the read and the compare with
//	             the Services, plan.go), then ResyncRead (commits the plan).
//	read=probe:  the same, with the budget holding the full read off: Run probes
//	             (probe.go), ResyncRead converges nothing.
//
// ns/op and lock-cpu-ms/op are what the caller's lock is held for (a change waits that
// long at most); read-cpu-ms/op is the CPU of the read made without the lock. The counts
// are the kernel reads per resync, under the lock and in all: IPVS dumps (list-vs,
// list-rs), ipset dumps (set list and one per owned set), address dumps and iptables-save
// runs (one per table and family each time the fixed rules are read: the process starts on
// a real node).
func BenchmarkPeriodicResync(b *testing.B) {
	for _, mode := range []string{"locked", "apart", "probe"} {
		for _, n := range []int{1000, 10000, 50000} {
			b.Run(fmt.Sprintf("read=%s/services=%d", mode, n), func(b *testing.B) { benchPeriodicResync(b, n, mode) })
		}
	}
}

type readCounts struct{ vs, rs, ipset, addr, save int }

func (f *fakes) readCounts() readCounts {
	return readCounts{
		vs:    f.ipvs.Calls(ipvstest.OpVirtualServers),
		rs:    f.ipvs.Calls(ipvstest.OpRealServers),
		ipset: f.ipset.Calls(ipsettest.OpSets) + f.ipset.Calls(ipsettest.OpList),
		addr:  f.link.Calls(linktest.OpAddresses),
		save:  (f.nf.Calls(netfiltertest.OpEnsure) + f.nf.Calls(netfiltertest.OpVerify)) * len(netfilter.Tables()),
	}
}

func (c readCounts) sub(o readCounts) readCounts {
	return readCounts{c.vs - o.vs, c.rs - o.rs, c.ipset - o.ipset, c.addr - o.addr, c.save - o.save}
}

// benchPeriodicResync times a periodic resync of n Services with nothing changed: read under
// the lock (mode "locked"), apart from it (a full Reading), or a Reading that probes.
func benchPeriodicResync(b *testing.B, n int, mode string) {
	apart := mode != "locked"
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
	var locked readCounts
	var lockCPU, readCPU time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var rd *Reading
		c0 := cpuTime()
		if mode == "probe" {
			holdFullRead(r)
		}
		if apart {
			rd = r.BeginRead() // under the lock: the snapshot of the Services
			lockCPU += cpuTime() - c0
			b.StopTimer()
			c0 = cpuTime()
			rd.Run(c)
			readCPU += cpuTime() - c0
			b.StartTimer()
		}
		before := f.readCounts()
		c0 = cpuTime()
		var err error
		if apart {
			err = r.ResyncRead(c, all, rd)
		} else {
			err = r.Resync(c, all)
		}
		if err != nil {
			b.Fatal(err)
		}
		lockCPU += cpuTime() - c0
		d := f.readCounts().sub(before)
		locked = readCounts{locked.vs + d.vs, locked.rs + d.rs, locked.ipset + d.ipset, locked.addr + d.addr, locked.save + d.save}
	}
	b.StopTimer()
	if ws := f.writes(); len(ws) > 0 {
		b.Fatalf("a resync of an unchanged kernel wrote: %q", ws[:min(len(ws), 5)])
	}
	total := f.readCounts()
	perOp := func(calls int) float64 { return float64(calls) / float64(b.N) }
	b.ReportMetric(perOp(total.vs+total.rs), "ipvs-dumps/op")
	b.ReportMetric(perOp(locked.vs+locked.rs), "locked-ipvs-dumps/op")
	b.ReportMetric(perOp(total.ipset), "ipset-dumps/op")
	b.ReportMetric(perOp(locked.ipset), "locked-ipset-dumps/op")
	b.ReportMetric(perOp(total.addr), "addr-dumps/op")
	b.ReportMetric(perOp(total.save), "iptables-save/op")
	b.ReportMetric(perOp(locked.save), "locked-iptables-save/op")
	b.ReportMetric(float64(lockCPU.Microseconds())/1000/float64(b.N), "lock-cpu-ms/op")
	b.ReportMetric(float64(readCPU.Microseconds())/1000/float64(b.N), "read-cpu-ms/op")
}
