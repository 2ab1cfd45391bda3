package reconcile

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/conntrack"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// Benchmarks of issue 3's targets, on the fakes: N Services x 10 endpoints (TCP port 80,
// one in ten Services with a local endpoint).
//
//	Cold:   ComputeService of every Service + Start + Resync on an empty kernel.
//	Change: one endpoint of one Service added or removed: ComputeService of that Service
//	        + Apply; reports the kernel writes issued per change (ops/change).
//	Restart: a new Reconciler adopts a populated kernel (Start + Resync); writes/op must be 0.
//	Held:   heap held by the Reconciler's model after a cold sync, measured over a kernel
//	        that keeps nothing (so the fakes' own memory is not counted).
//
// Each reports cpu-ms/op too (user+system CPU of the process, from getrusage), since the
// targets are in CPU time and the garbage collector runs on the other core.

type benchWorld struct {
	svcs   []*v1.Service
	slices []*discoveryv1.EndpointSlice
}

func newBenchWorld(n int) *benchWorld {
	w := &benchWorld{}
	node := "node-a"
	other := "node-b"
	for i := 0; i < n; i++ {
		vip := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		if i >= 1<<16 {
			panic("too many services")
		}
		name := fmt.Sprintf("svc-%d", i)
		w.svcs = append(w.svcs, &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
			Spec: v1.ServiceSpec{
				Type: v1.ServiceTypeClusterIP, ClusterIP: vip.String(), ClusterIPs: []string{vip.String()},
				Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80}},
			},
		})
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "bench", Name: name + "-1"},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(v1.ProtocolTCP), Port: ptr(int32(8080))}},
		}
		for j := 0; j < 10; j++ {
			n := i*10 + j
			a := netip.AddrFrom4([4]byte{10, 244 + byte(n>>16), byte(n >> 8), byte(n)})
			nn := &other
			if j == 0 && i%10 == 0 {
				nn = &node
			}
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{a.String()}, NodeName: nn})
		}
		w.slices = append(w.slices, sl)
	}
	return w
}

// nodeFacing turns every 10th Service into a NodePort (odd tens) or a LoadBalancer with
// an ingress IP, two source ranges and, every other one, externalTrafficPolicy=Local (even
// tens), each with its own NodePort, and returns their indexes.
func (w *benchWorld) nodeFacing() []int {
	var out []int
	for i := 0; i < len(w.svcs); i += 10 {
		s := &w.svcs[i].Spec
		s.Ports[0].NodePort = int32(30000 + len(out))
		s.Type = v1.ServiceTypeNodePort
		if (i/10)%2 == 0 {
			s.Type = v1.ServiceTypeLoadBalancer
			s.LoadBalancerSourceRanges = []string{"203.0.113.0/24", "192.168.1.0/24"}
			ip := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
			w.svcs[i].Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: ip.String()}}
			if (i/20)%2 == 0 {
				s.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
				s.HealthCheckNodePort = int32(32000 + len(out))
			}
		}
		out = append(out, i)
	}
	return out
}

func (w *benchWorld) compute(b *testing.B, i int) desired.Service {
	node := desired.Node{Name: "node-a", Addresses: []netip.Addr{nodeIP}}
	s, errs := desired.ComputeService(testOpts, node, nil, desired.APIServiceOf(w.svcs[i]), desired.SlicesOf(w.slices[i]))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	return s
}

func (w *benchWorld) all(b *testing.B) map[types.NamespacedName]desired.Service {
	out := make(map[types.NamespacedName]desired.Service, len(w.svcs))
	for i, s := range w.svcs {
		out[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = w.compute(b, i)
	}
	return out
}

// quiet returns a context whose logger discards everything, so benchmark output stays clean.
func quiet() context.Context { return klog.NewContext(context.Background(), logr.Discard()) }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchSizes = []int{10000, 50000}

func BenchmarkCold(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			w := newBenchWorld(n)
			c := quiet()
			b.ReportAllocs()
			b.ResetTimer()
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f := newFakes()
				runtime.GC()
				b.StartTimer()
				c0 := cpuTime()
				r := f.reconciler()
				if err := r.Start(c); err != nil {
					b.Fatal(err)
				}
				if err := r.Resync(c, w.all(b)); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - c0
			}
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// BenchmarkEndpointChange changes one endpoint of one Service at a time. With
// node-facing, one Service in ten is a NodePort or LoadBalancer (see nodeFacing) and only
// those change: each change then touches the ClusterIP, NodePort and LoadBalancer virtual
// servers of the Service.
func BenchmarkEndpointChange(b *testing.B) {
	for _, mix := range []string{"clusterip", "node-facing"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("mix=%s/services=%d", mix, n), func(b *testing.B) { benchEndpointChange(b, n, mix == "node-facing") })
		}
	}
}

func benchEndpointChange(b *testing.B, n int, nodeFacing bool) {
	{
		{
			w := newBenchWorld(n)
			changing := make([]int, n)
			for i := range changing {
				changing[i] = i
			}
			if nodeFacing {
				changing = w.nodeFacing()
			}
			c := quiet()
			f := newFakes()
			r := f.reconciler()
			if err := r.Start(c); err != nil {
				b.Fatal(err)
			}
			if err := r.Resync(c, w.all(b)); err != nil {
				b.Fatal(err)
			}
			f.reset()
			extra := discoveryv1.Endpoint{Addresses: []string{"10.250.0.1"}, NodeName: ptr("node-b")}
			ops := 0
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				k := changing[(i/2*7919)%len(changing)] // a different Service each time, deterministic
				sl := w.slices[k]
				if i%2 == 0 {
					sl.Endpoints = append(sl.Endpoints, extra)
				} else {
					sl.Endpoints = sl.Endpoints[:len(sl.Endpoints)-1]
				}
				s := w.compute(b, k)
				name := types.NamespacedName{Namespace: "bench", Name: w.svcs[k].Name}
				if err := r.Apply(c, map[types.NamespacedName]*desired.Service{name: &s}); err != nil {
					b.Fatal(err)
				}
				ops += len(f.ipvs.Ops()) + len(f.link.Ops()) + len(f.ipset.Ops())
				f.ipvs.ResetOps()
				f.link.ResetOps()
				f.ipset.ResetOps()
			}
			cpu := cpuTime() - c0
			b.ReportMetric(float64(ops)/float64(b.N), "ops/change")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
		}
	}
}

// BenchmarkRestart measures a restarted proxier adopting a populated kernel: Start + Resync
// of a new Reconciler over fakes a first one filled. It must write nothing (writes/op).
// With node-facing, one Service in ten is a NodePort or LoadBalancer (see nodeFacing): their
// virtual servers on the node address are adopted through the NodePort set members.
func BenchmarkRestart(b *testing.B) {
	for _, mix := range []string{"clusterip", "node-facing"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("mix=%s/services=%d", mix, n), func(b *testing.B) { benchRestart(b, n, mix == "node-facing") })
		}
	}
}

func benchRestart(b *testing.B, n int, nodeFacing bool) {
	{
		{
			w := newBenchWorld(n)
			if nodeFacing {
				w.nodeFacing()
			}
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
				r := f.reconciler()
				if err := r.Start(c); err != nil {
					b.Fatal(err)
				}
				if err := r.Resync(c, all); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime() - c0
			b.ReportMetric(float64(len(f.writes()))/float64(b.N), "writes/op")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		}
	}
}

func BenchmarkHeldMemory(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			w := newBenchWorld(n)
			c := quiet()
			for i := 0; i < b.N; i++ {
				all := w.all(b)
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				r := New(nullKernel(), Options{Desired: testOpts})
				if err := r.Start(c); err != nil {
					b.Fatal(err)
				}
				if err := r.Resync(c, all); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-held")
				runtime.KeepAlive(r)
				runtime.KeepAlive(all)
			}
		})
	}
}

// nullKernel accepts every write and holds nothing, so that only the Reconciler's own
// memory and CPU are measured.
func nullKernel() Kernel {
	n := null{}
	return Kernel{IPVS: n, Link: n, IPSet: n, Netfilter: n, Conntrack: n, Sysctl: n}
}

type null struct{}

func (null) VirtualServers() ([]ipvs.VirtualServer, error)                   { return nil, nil }
func (null) AddVirtualServer(ipvs.VirtualServer) error                       { return nil }
func (null) UpdateVirtualServer(ipvs.VirtualServer) error                    { return nil }
func (null) DeleteVirtualServer(ipvs.Key) error                              { return nil }
func (null) RealServers(ipvs.Key) ([]ipvs.RealServer, error)                 { return nil, nil }
func (null) AddRealServer(ipvs.Key, ipvs.RealServer) error                   { return nil }
func (null) UpdateRealServer(ipvs.Key, ipvs.RealServer) error                { return nil }
func (null) DeleteRealServer(ipvs.Key, ipvs.RealServer) error                { return nil }
func (null) SetTimeouts(ipvs.Timeouts) error                                 { return nil }
func (null) EnsureDummy(string) error                                        { return nil }
func (null) DeleteDummy(string) error                                        { return nil }
func (null) Addresses(string) ([]netip.Addr, error)                          { return nil, nil }
func (null) AddAddress(string, netip.Addr) error                             { return nil }
func (null) DeleteAddress(string, netip.Addr) error                          { return nil }
func (null) Sets() ([]string, error)                                         { return nil, nil }
func (null) Counts() (map[string]int, error)                                 { return nil, nil }
func (null) CreateSet(ipset.Set) error                                       { return nil }
func (null) DestroySet(string) error                                         { return nil }
func (null) Entries(string) ([]ipset.Entry, error)                           { return nil, nil }
func (null) AddEntries(string, ...ipset.Entry) error                         { return nil }
func (null) DeleteEntries(string, ...ipset.Entry) error                      { return nil }
func (null) Ensure(ipset.Family, netfilter.Ruleset) error                    { return nil }
func (null) Repair(ipset.Family, netfilter.Ruleset) ([]string, error)        { return nil, nil }
func (null) Verify(ipset.Family, netfilter.Ruleset) ([]string, error)        { return nil, nil }
func (null) Cleanup(ipset.Family) error                                      { return nil }
func (null) Dump(ipset.Family) (netfilter.Ruleset, error)                    { return netfilter.Ruleset{}, nil }
func (null) DeleteByOrigDst(ipvs.Protocol, netip.Addr, uint16) (int, error)  { return 0, nil }
func (null) DeleteByReplySrc(ipvs.Protocol, netip.Addr, uint16) (int, error) { return 0, nil }
func (null) DeleteByAddr(netip.Addr) (int, error)                            { return 0, nil }
func (null) Delete([]conntrack.Filter) (int, error)                          { return 0, nil }
func (null) Get(string) (string, error)                                      { return "", nil }
func (null) Set(string, string) error                                        { return nil }
