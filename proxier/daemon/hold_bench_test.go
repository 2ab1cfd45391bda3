package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/runner"
)

// BenchmarkResyncHold measures what a periodic resync makes a change wait for, on fakes
// with N Services of 10 endpoints each. The runner calls one sync at a time, so a change
// that arrives while the periodic sync (sync(Periodic), after readForResync: the read and
// the compare, made beside the syncs) runs waits for all of it; the sync holds kmu all that
// time. ns/op and hold-max-ms are that wait (wall, mean and worst); partial-ms/op is the
// one-endpoint change itself, applied by the runner right after (from the EndpointSlice
// update to its real server in the fake IPVS); read-ms/op is the read and compare, made
// without kmu. hold-cpu-ms/op is the process's CPU time during the hold (the other
// goroutines idle), the figure to trust on a loaded machine.
func BenchmarkResyncHold(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) { benchResyncHold(b, n) })
	}
}

func benchResyncHold(b *testing.B, services int) {
	k := newFakeKernel()
	objs := make([]any, 0, 2*services)
	for i := range services {
		name := fmt.Sprintf("svc-%d", i)
		ips := make([]string, 10)
		for j := range ips {
			n := i*10 + j
			ips[j] = netip.AddrFrom4([4]byte{10, 244 + byte(n>>16), byte(n >> 8), byte(n)}).String()
		}
		vip := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		objs = append(objs, service(name, vip.String(), 80), slice(name, "node-b", ips...))
	}
	cfg := testConfig(b)
	cfg.SyncPeriod = metav1.Duration{Duration: time.Hour} // the benchmark starts the resyncs
	h := startWith(b, k.kernel(), cfg, objs...)
	eventually(b, "the initial sync", func() bool {
		return h.d.Ready() && strings.Count(k.ipvs.Dump(), "\n") == services*11
	})
	key := ipvs.Key{Address: netip.MustParseAddr("10.96.0.7"), Protocol: ipvs.TCP, Port: 80}
	var holdMax, holdCPU, read, partial time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		start := time.Now()
		h.d.readForResync(h.ctx)
		read += time.Since(start)
		b.StartTimer()
		start, c0 := time.Now(), processCPU()
		if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		holdCPU += processCPU() - c0
		b.StopTimer()
		holdMax = max(holdMax, d)
		ep := fmt.Sprintf("10.250.%d.%d", i/250%250, i%250+1)
		start = time.Now()
		if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(), slice("svc-7", "node-b", ep), metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		want := netip.AddrPortFrom(netip.MustParseAddr(ep), 8080)
		for !hasRealServer(k, key, want) {
			time.Sleep(20 * time.Microsecond)
		}
		partial += time.Since(start)
		b.StartTimer()
	}
	b.StopTimer()
	perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(float64(holdMax.Microseconds())/1000, "hold-max-ms")
	b.ReportMetric(perOp(holdCPU), "hold-cpu-ms/op")
	b.ReportMetric(perOp(read), "read-ms/op")
	b.ReportMetric(perOp(partial), "partial-ms/op")
}

// processCPU is the CPU time the process used so far (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
