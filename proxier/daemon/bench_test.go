package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
	"github.com/kubevs/kubevs/proxier/runner"
)

func hasRealServer(k *fakeKernel, key ipvs.Key, ap netip.AddrPort) bool {
	rss, err := k.ipvs.RealServers(key)
	if err != nil {
		return false
	}
	for _, rs := range rss {
		if rs.AddrPort() == ap {
			return true
		}
	}
	return false
}

// BenchmarkEndpointChangeToKernel measures the whole pipeline on fakes with 1000 Services
// of 2 endpoints each: an EndpointSlice update in the (fake) API server, the informer
// event, the change tracker, the runner, ComputeService of the one changed Service and a
// partial reconcile, until the fake IPVS table holds the new endpoint; with
// minSyncPeriod 0 and with the default (1s), which must cost the same (a change on an idle
// proxier is applied at once). Most of ns/op is the fake clientset's own cost (it builds a
// REST mapper per write); the proxier's part is reported as ns/partial-sync, from the
// sync duration histogram.
func BenchmarkEndpointChangeToKernel(b *testing.B) {
	for _, min := range []time.Duration{0, config.DefaultMinSyncPeriod} {
		b.Run(fmt.Sprintf("minSyncPeriod=%v", min), func(b *testing.B) { benchmarkEndpointChange(b, min) })
	}
}

func benchmarkEndpointChange(b *testing.B, minSyncPeriod time.Duration) {
	const services = 1000
	k := newFakeKernel()
	var objs []any
	for i := range services {
		name := fmt.Sprintf("svc-%d", i)
		objs = append(objs, service(name, fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), 80),
			slice(name, "node-b", fmt.Sprintf("10.244.%d.%d", i/250, i%250+1), fmt.Sprintf("10.245.%d.%d", i/250, i%250+1)))
	}
	cfg := testConfig(b)
	cfg.MinSyncPeriod = &metav1.Duration{Duration: minSyncPeriod}
	h := startWith(b, k.kernel(), cfg, objs...)
	eventually(b, "the initial sync", func() bool { return h.d.Ready() && strings.Count(k.ipvs.Dump(), "\n") == services*3 })
	key := ipvs.Key{Address: netip.MustParseAddr("10.96.0.8"), Protocol: ipvs.TCP, Port: 80}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ep := fmt.Sprintf("10.246.%d.%d", i/250%250, i%250+1)
		es := slice("svc-7", "node-b", "10.244.0.8", ep)
		if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(), es, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		want := netip.AddrPortFrom(netip.MustParseAddr(ep), 8080)
		for !hasRealServer(k, key, want) {
			time.Sleep(20 * time.Microsecond)
		}
	}
	b.StopTimer()
	sum, count := partialSyncs(b, h)
	if count > 0 {
		b.ReportMetric(sum/count*1e9, "ns/partial-sync")
	}
}

// partialSyncs returns the sum of the partial syncs' durations (seconds) and their count.
func partialSyncs(b *testing.B, h *harness) (sum, count float64) {
	mfs, err := h.m.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kubevs_sync_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "mode" && l.GetValue() == "partial" {
					return m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return 0, 0
}

// BenchmarkPeriodicResync measures one periodic full resync of 1000 Services of 2
// endpoints on fakes, with the computed-state cache (cache=reuse: nothing changed, no
// Service is recomputed) and without it (cache=none: every Service computed again, as
// before the cache).
func BenchmarkPeriodicResync(b *testing.B) {
	const services = 1000
	k := newFakeKernel()
	var objs []any
	for i := range services {
		name := fmt.Sprintf("svc-%d", i)
		objs = append(objs, service(name, fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), 80),
			slice(name, "node-b", fmt.Sprintf("10.244.%d.%d", i/250, i%250+1), fmt.Sprintf("10.245.%d.%d", i/250, i%250+1)))
	}
	h := startWith(b, k.kernel(), testConfig(b), objs...)
	eventually(b, "the initial sync", func() bool { return h.d.Ready() && strings.Count(k.ipvs.Dump(), "\n") == services*3 })
	for _, reuse := range []bool{true, false} {
		b.Run(fmt.Sprintf("cache=%s", map[bool]string{true: "reuse", false: "none"}[reuse]), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if !reuse {
					h.d.kmu.Lock()
					h.d.computed.svcs = nil
					h.d.kmu.Unlock()
				}
				if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChangeDuringPeriodicResync measures how long a one-endpoint change waits when it
// arrives while a periodic full resync reads the kernel: 1000 Services of 2 endpoints on
// fakes whose reads are made slow as a real kernel's are (each fixed-rules check, i.e. the
// iptables-save runs of one family, 50ms; each IPVS real server dump 50µs, the table of all
// of them 50µs per virtual server). read=locked is
// the resync that reads under kmu (as before), read=apart the one whose read runs beside
// the syncs (readForResync, then the repair). ns/op is the change's latency, from the
// EndpointSlice update to its real server in the fake IPVS; resync-ms/op the whole resync.
func BenchmarkChangeDuringPeriodicResync(b *testing.B) {
	for _, apart := range []bool{false, true} {
		b.Run("read="+map[bool]string{false: "locked", true: "apart"}[apart], func(b *testing.B) { benchChangeDuringResync(b, apart) })
	}
}

func benchChangeDuringResync(b *testing.B, apart bool) {
	const services = 1000
	k := newFakeKernel()
	var objs []any
	for i := range services {
		name := fmt.Sprintf("svc-%d", i)
		objs = append(objs, service(name, fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), 80),
			slice(name, "node-b", fmt.Sprintf("10.244.%d.%d", i/250, i%250+1), fmt.Sprintf("10.245.%d.%d", i/250, i%250+1)))
	}
	cfg := testConfig(b)
	cfg.SyncPeriod = metav1.Duration{Duration: time.Hour} // the benchmark starts the resyncs
	h := startWith(b, k.kernel(), cfg, objs...)
	eventually(b, "the initial sync", func() bool { return h.d.Ready() && strings.Count(k.ipvs.Dump(), "\n") == services*3 })
	reading := make(chan struct{}, 1)
	k.nf.SetHook(func(op, _ string) error {
		if op == netfiltertest.OpVerify || op == netfiltertest.OpEnsure {
			select {
			case reading <- struct{}{}:
			default:
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	})
	k.ipvs.SetHook(func(op, _ string) error {
		switch op {
		case ipvstest.OpRealServers:
			time.Sleep(50 * time.Microsecond)
		case ipvstest.OpRealServerTable: // all of them at once, as long
			time.Sleep(services * 50 * time.Microsecond)
		}
		return nil
	})
	key := ipvs.Key{Address: netip.MustParseAddr("10.96.0.8"), Protocol: ipvs.TCP, Port: 80}
	var resync time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		done := make(chan time.Duration)
		go func() {
			start := time.Now()
			if apart {
				h.d.readForResync(h.ctx)
			}
			if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil {
				b.Error(err)
			}
			done <- time.Since(start)
		}()
		<-reading // the resync reads the fixed rules
		ep := fmt.Sprintf("10.246.%d.%d", i/250%250, i%250+1)
		es := slice("svc-7", "node-b", "10.244.0.8", ep)
		want := netip.AddrPortFrom(netip.MustParseAddr(ep), 8080)
		b.StartTimer()
		if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(), es, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		for !hasRealServer(k, key, want) {
			time.Sleep(20 * time.Microsecond)
		}
		b.StopTimer()
		resync += <-done
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(resync.Milliseconds())/float64(b.N), "resync-ms/op")
}
