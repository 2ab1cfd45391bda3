package status

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/conntrack"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/proxier/reconcile"
	"github.com/kubevs/kubevs/proxier/sysctl"
)

// BenchmarkStatusInVM is a whole status run (Run, as `kubevs status` calls it, with the
// adapters openEnv opens) over the VM's kernel, which the real reconciler programmed with
// $KUBEVS_BENCH_SERVICES (default 300) ClusterIP Services of 10 endpoints on a dual-stack
// node: IPVS, kube-ipvs0, the sets, iptables and ip6tables rules. The API is the fake
// clientset (a kube-apiserver takes minutes to start under TCG). It reports the reads the
// run made: iptables-save processes per run.
//
//	kubevs-vm run --env KUBEVS_IN_VM=1 -- status.test -test.run '^$' -test.bench StatusInVM -test.benchtime 3x
func BenchmarkStatusInVM(b *testing.B) {
	testenv.RequireVM(b)
	n := 300
	if v, err := strconv.Atoi(os.Getenv("KUBEVS_BENCH_SERVICES")); err == nil {
		n = v
	}
	nd := node("10.244.0.0/24", "fd00:244::/64")
	objs := []runtime.Object{nd}
	for i := range n {
		svc := service(fmt.Sprintf("ns%d/svc%d", i%10, i), fmt.Sprintf("10.96.%d.%d", 1+i/250, 1+i%250), "TCP:80")
		ips := make([]string, 10)
		for j := range ips {
			ips[j] = fmt.Sprintf("10.%d.%d.%d", 128+j, i/250, 1+i%250)
		}
		objs = append(objs, svc, slice(svc, svc.Name+"-1", ips...))
	}
	client := fake.NewClientset(objs...)
	testenv.InNetns(b, func() {
		iv, lk := realAdapters(b)
		nf, err := netfilter.New()
		if err != nil {
			b.Fatal(err)
		}
		ctx := klog.NewContext(context.Background(), logr.Discard())
		wants, err := ListDesired(ctx, clientsetSource{client}, testNode, config.New(), nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		all := map[types.NamespacedName]desired.Service{}
		for _, w := range wants {
			all[w.Service] = w.State
		}
		start := time.Now()
		r := reconcile.New(reconcile.Kernel{IPVS: iv, Link: lk, IPSet: ipset.New(), Netfilter: nf, Conntrack: conntrack.New(), Sysctl: sysctl.New()},
			reconcile.Options{Desired: derive.Options(config.New(), nd, nil)})
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if err := r.Resync(ctx, all); err != nil {
			b.Fatal(err)
		}
		b.Logf("%d Services programmed in %v", n, time.Since(start).Round(time.Millisecond))
		b.ResetTimer()
		var saves int
		for b.Loop() {
			env, err := openEnv(&rest.Config{Host: "https://192.0.2.1:6443"}) // never dialled
			if err != nil {
				b.Fatal(err)
			}
			env.API = clientsetSource{client}
			rep, err := Run(context.Background(), testNode, config.New(), env)
			if err != nil {
				b.Fatal(err)
			}
			if len(rep.Drift) != 0 {
				b.Fatalf("drift: %+v", rep.Drift[0])
			}
			if l, ok := env.Netfilter.(*netfilter.Linux); ok {
				saves += l.Runs().Saves
			}
			env.Close()
		}
		b.ReportMetric(float64(saves)/float64(b.N), "iptables-save/op")
	})
}
