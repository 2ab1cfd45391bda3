package status

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link/linktest"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
	"github.com/kubevs/kubevs/proxier/reconcile"
)

// listedSource is a Source over objects already listed: it costs nothing, so that a
// benchmark measures status's own work and not the fake clientset's copies. It counts the
// requests a real API server would have served.
type listedSource struct {
	node     *v1.Node
	svcs     []v1.Service
	slices   []discoveryv1.EndpointSlice
	requests map[string]int
}

func (s *listedSource) Node(context.Context, string) (*v1.Node, error) {
	s.requests["get node"]++
	return s.node, nil
}

func (s *listedSource) Services(context.Context, string) ([]v1.Service, error) {
	s.requests["list services"]++
	return s.svcs, nil
}

func (s *listedSource) EndpointSlices(context.Context, string) ([]discoveryv1.EndpointSlice, error) {
	s.requests["list endpointslices"]++
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
		ipvstest.OpVirtualServers: fk.IPVS.Calls(ipvstest.OpVirtualServers),
		ipvstest.OpRealServers:    fk.IPVS.Calls(ipvstest.OpRealServers),
		linktest.OpAddresses:      fk.Link.Calls(linktest.OpAddresses),
		ipsettest.OpSets:          fk.IPSet.Calls(ipsettest.OpSets),
		ipsettest.OpList:          fk.IPSet.Calls(ipsettest.OpList),
		netfiltertest.OpDump:      fk.Netfilter.Calls(netfiltertest.OpDump),
	}
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
			for b.Loop() {
				rep, err := Run(context.Background(), testNode, cfg, bigEnv(src, fk))
				if err != nil {
					b.Fatal(err)
				}
				if len(rep.Drift) != 0 {
					b.Fatalf("drift: %v", rep.Drift[0])
				}
			}
		})
	}
}
