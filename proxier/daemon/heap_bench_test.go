package daemon

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/runner"
)

// BenchmarkProxierHeap reports the heap the proxier holds once it has programmed N
// ClusterIP Services of 10 endpoints each (on 100 nodes) and made one periodic resync,
// whose full read the reconciler's model keeps: informer caches, change tracker, computed
// Services, model, metrics. The fake API server's and the fake kernel's objects are left
// out: the heap is measured again once the daemon is stopped and dropped, with both still
// held. Metrics: MB-held (live heap after a GC) and B/service. The process's RSS is about
// twice the live heap with Go's default GOGC=100, plus the runtime's own (compare the VM
// runs of make bench-e2e, which report RSS).
//
//	go test -run '^$' -bench ProxierHeap -benchtime 1x ./proxier/daemon/
//
// With KUBEVS_HEAP_PROFILE=FILE it writes the heap profile of the running proxier there.
func BenchmarkProxierHeap(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			var held uint64
			for range b.N {
				held = proxierHeap(b, n)
			}
			b.ReportMetric(float64(held)/(1<<20), "MB-held")
			b.ReportMetric(float64(held)/float64(n), "B/service")
		})
	}
}

func proxierHeap(b *testing.B, services int) uint64 {
	const endpoints, nodes = 10, 100
	k := newFakeKernel()
	objs := make([]any, 0, 2*services)
	vip, ep := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.128.0.1")
	for i := range services {
		name := fmt.Sprintf("svc-%05d", i)
		objs = append(objs, service(name, vip.String(), 80))
		vip = vip.Next()
		var eps []discoveryv1.Endpoint
		for j := range endpoints {
			eps = append(eps, fixture.Endpoint(ep.String(), fixture.Ready(true), fixture.OnNode(fmt.Sprintf("node-%d", (i+j)%nodes))))
			ep = ep.Next()
		}
		objs = append(objs, fixture.Slice("default/"+name+"-1", fixture.OfService(name),
			fixture.TriggerTime(time.Now()), fixture.AddressType(discoveryv1.AddressTypeIPv4),
			fixture.SlicePorts(fixture.SlicePort("http", "TCP", 8080)), fixture.Endpoints(eps...)))
	}
	cfg := testConfig(b)
	cfg.SyncPeriod = metav1.Duration{Duration: time.Hour} // the benchmark makes the resync
	h := startWith(b, k.kernel(), cfg, objs...)
	timeout := time.Now().Add(10 * time.Minute)
	for !h.d.Ready() || len(h.d.tracker.Services()) < services {
		if time.Now().After(timeout) {
			b.Fatal("not synced after 10 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.d.readForResync(h.ctx)
	if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil {
		b.Fatal(err)
	}
	if vs, err := k.ipvs.VirtualServers(); err != nil || len(vs) != services {
		b.Fatalf("%d virtual servers in the fake kernel, want %d (%v)", len(vs), services, err)
	}
	running := testenv.LiveHeap()
	if path := os.Getenv("KUBEVS_HEAP_PROFILE"); path != "" {
		writeHeapProfile(b, path)
	}
	h.stop()
	h.d, h.m = nil, nil
	time.Sleep(time.Second) // the informers' goroutines end
	stopped := testenv.LiveHeap()
	runtime.KeepAlive(k)
	runtime.KeepAlive(h.client)
	if running < stopped {
		b.Fatalf("heap %d B running, %d B stopped", running, stopped)
	}
	return running - stopped
}

// writeHeapProfile writes the heap profile of the running proxier (and the fakes) to path.
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}
