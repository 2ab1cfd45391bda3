package status

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link/linktest"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
	"github.com/kubevs/kubevs/proxier/reconcile"
)

// listedSource is a Source over objects already listed: it costs nothing, so that a
// benchmark measures status's own work and not the fake clientset's copies. It counts the
// requests a real API server would have served.
type listedSource struct {
	mu       sync.Mutex // status sends its requests at once
	node     *v1.Node
	svcs     []v1.Service
	slices   []discoveryv1.EndpointSlice
	requests map[string]int
}

func (s *listedSource) count(req string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[req]++
}

func (s *listedSource) Node(context.Context, string) (*v1.Node, error) {
	s.count("get node")
	return s.node, nil
}

func (s *listedSource) Services(context.Context, string) ([]v1.Service, error) {
	s.count("list services")
	return s.svcs, nil
}

func (s *listedSource) EndpointSlices(context.Context, string) ([]discoveryv1.EndpointSlice, error) {
	s.count("list endpointslices")
	return s.slices, nil
}

// bigCluster returns n ClusterIP Services of one TCP port with eps ready endpoints each, on
// other nodes, and a fake kernel the real reconciler programmed from them.
func bigCluster(tb testing.TB, n, eps int) (*listedSource, *fixture.Kernel) {
	tb.Helper()
	src := &listedSource{node: node("10.244.0.0/24"), requests: map[string]int{}}
	for i := range n {
		svc := service(fmt.Sprintf("ns%d/svc%d", i%20, i), fmt.Sprintf("10.96.%d.%d", i/250, 1+i%250), "TCP:80")
		ips := make([]string, eps)
		for j := range ips {
			ips[j] = fmt.Sprintf("10.%d.%d.%d", 128+j, i/250, 1+i%250)
		}
		src.svcs = append(src.svcs, *svc)
		src.slices = append(src.slices, *slice(svc, svc.Name+"-1", ips...))
	}
	fk := fixture.NewKernel(fixture.Sysctls())
	ctx := klog.NewContext(context.Background(), logr.Discard())
	wants, err := ListDesired(ctx, src, testNode, config.New(), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	all := make(map[types.NamespacedName]desired.Service, len(wants))
	for _, w := range wants {
		all[w.Service] = w.State
	}
	k := reconcile.Kernel{IPVS: fk.IPVS, Link: fk.Link, IPSet: fk.IPSet, Netfilter: fk.Netfilter, Conntrack: fk.Conntrack, Sysctl: fk.Sysctl}
	r := reconcile.New(k, reconcile.Options{Desired: derive.Options(config.New(), src.node, nil)})
	if err := r.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := r.Resync(ctx, all); err != nil {
		tb.Fatal(err)
	}
	clear(src.requests)
	return src, fk
}

func bigEnv(src Source, fk *fixture.Kernel) Env {
	return Env{API: src, IPVS: fk.IPVS, Link: fk.Link, IPSet: fk.IPSet, Netfilter: fk.Netfilter}
}

// kernelReads counts the read calls a status run made on the fakes, by operation.
func kernelReads(fk *fixture.Kernel) map[string]int {
	return map[string]int{
		ipvstest.OpVirtualServers:  fk.IPVS.Calls(ipvstest.OpVirtualServers),
		ipvstest.OpRealServers:     fk.IPVS.Calls(ipvstest.OpRealServers),
		ipvstest.OpRealServerTable: fk.IPVS.Calls(ipvstest.OpRealServerTable),
		linktest.OpAddresses:       fk.Link.Calls(linktest.OpAddresses),
		ipsettest.OpSets:           fk.IPSet.Calls(ipsettest.OpSets),
		ipsettest.OpList:           fk.IPSet.Calls(ipsettest.OpList),
		netfiltertest.OpDump:       fk.Netfilter.Calls(netfiltertest.OpDump),
	}
}

// cpuTime is the user and system time of the process so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStatus is a whole status run (API objects listed, desired state computed, the
// fake kernel read and compared) at 300, 5,000 and 10,000 Services of 10 endpoints.
//
//	go test -run '^$' -bench Status -benchmem ./proxier/status/
func BenchmarkStatus(b *testing.B) {
	for _, n := range []int{300, 5000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			src, fk := bigCluster(b, n, 10)
			cfg := config.New()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for b.Loop() {
				rep, err := Run(context.Background(), testNode, cfg, bigEnv(src, fk))
				if err != nil {
					b.Fatal(err)
				}
				if len(rep.Drift) != 0 {
					b.Fatalf("drift: %v", rep.Drift[0])
				}
			}
			// The CPU the process spent (all threads), which a loaded machine does not inflate
			// as it does ns/op.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// A status run hands the worker the same number of jobs, asks the API the same requests
// and dumps each kernel table the same number of times at 30 Services as at 300: the IPVS
// real servers too, read at once from the table (/proc/net/ip_vs), not one dump per
// virtual server.
func TestStatusReadsDoNotGrowWithServices(t *testing.T) {
	type counts struct {
		Handoffs int64
		API      map[string]int
		Kernel   map[string]int
	}
	measure := func(n int) counts {
		src, fk := bigCluster(t, n, 10)
		ctx := context.Background()
		r, err := newReader(ctx, 0)
		must(t, err)
		defer r.close()
		before := kernelReads(fk) // the reconciler's
		rep, err := runWith(ctx, r, testNode, config.New(), bigEnv(src, fk))
		must(t, err)
		if len(rep.Drift) != 0 {
			t.Fatalf("%d Services: drift %v", n, rep.Drift)
		}
		c := counts{Handoffs: r.handoffs.Load(), API: src.requests, Kernel: kernelReads(fk)}
		for op, n := range before {
			c.Kernel[op] -= n
		}
		t.Logf("%d Services: %+v", n, c)
		if got, table := c.Kernel[ipvstest.OpRealServers], c.Kernel[ipvstest.OpRealServerTable]; got != 0 || table != 1 {
			t.Errorf("%d Services: %d real server dumps and %d table reads, want 0 and 1", n, got, table)
		}
		return c
	}
	small, large := measure(30), measure(300)
	if diff := cmp.Diff(small, large); diff != "" {
		t.Errorf("reads at 30 Services (-) and at 300 (+):\n%s", diff)
	}
	// One job per kind of read: registrations, addresses, virtual servers, real servers, sets,
	// members, rules (one family on the fake).
	if large.Handoffs > 7 {
		t.Errorf("%d jobs handed to the reader's worker, want at most 7", large.Handoffs)
	}
	if want := map[string]int{"get node": 1, "list services": 1, "list endpointslices": 1}; !cmp.Equal(large.API, want) {
		t.Errorf("API requests %v, want %v", large.API, want)
	}
}

// failingTable fails the all-at-once read of the IPVS table.
type failingTable struct{ ipvs.Interface }

func (failingTable) RealServerTable() (map[ipvs.Key][]ipvs.RealServer, error) {
	return nil, errors.New("read /proc/thread-self/net/ip_vs: boom")
}

// A table read that fails is no finding: status dumps each virtual server instead and
// reports the same (no drift), and a real server deleted behind kubevs's back is still seen.
func TestStatusDumpsWhenTheTableFails(t *testing.T) {
	src, fk := bigCluster(t, 30, 10)
	env := bigEnv(src, fk)
	env.IPVS = failingTable{fk.IPVS}
	before := fk.IPVS.Calls(ipvstest.OpRealServers)
	rep, err := Run(context.Background(), testNode, config.New(), env)
	must(t, err)
	if len(rep.Drift) != 0 {
		t.Fatalf("drift %v", rep.Drift)
	}
	if got := fk.IPVS.Calls(ipvstest.OpRealServers) - before; got != 30 {
		t.Errorf("%d real server dumps, want 30 (one per virtual server)", got)
	}
	vss, err := fk.IPVS.VirtualServers()
	must(t, err)
	rss, err := fk.IPVS.RealServers(vss[0].Key)
	must(t, err)
	must(t, fk.IPVS.DeleteRealServer(vss[0].Key, rss[0]))
	rep, err = Run(context.Background(), testNode, config.New(), env)
	must(t, err)
	if len(rep.Drift) != 1 {
		t.Errorf("drift %v, want the deleted real server", rep.Drift)
	}
}
