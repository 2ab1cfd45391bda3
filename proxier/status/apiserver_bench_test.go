package status

import (
	"context"
	"fmt"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubevs/kubevs/internal/testenv"
)

// BenchmarkSourceRealAPIServer lists $N Services and their slices (10 endpoints each) from a
// real kube-apiserver on the host, as a status run does, in JSON or protobuf, from etcd
// (resourceVersion "") or from the watch cache ("0"), and with the three requests one after
// the other or at once. Starting the server and creating the objects takes a minute or two.
// Measured on the 2-core host at load 15 (1,000 Services, 2 ports, 10 endpoints; ms/op and
// the client's CPU ms/op): JSON from etcd one after the other 630 / 150, at once 600 / 115,
// protobuf from etcd 696 / 53, protobuf from the watch cache 203 / 36.
//
//	go test -run '^$' -bench SourceRealAPIServer -benchtime 20x ./proxier/status/
func BenchmarkSourceRealAPIServer(b *testing.B) {
	if testenv.InVM() {
		b.Skip("runs on the host: kube-apiserver takes minutes to start under TCG") // as TestSourceAgainstARealAPIServer
	}
	rc := startAPIServer(b)
	fast := rest.CopyConfig(rc) // client-go's default 5 requests/s would take minutes to create them
	fast.QPS, fast.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(fast)
	if err != nil {
		b.Fatal(err)
	}
	const n = 1000
	ctx := context.Background()
	if _, err := cs.CoreV1().Nodes().Create(ctx, node("10.244.0.0/24"), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns%d", i)}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				svc := service(fmt.Sprintf("ns%d/svc%d", i%10, i), fmt.Sprintf("10.96.%d.%d", 1+i/250, 1+i%250), "TCP:80", "TCP:443")
				if _, err := cs.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
				ips := make([]string, 10)
				for j := range ips {
					ips[j] = fmt.Sprintf("10.%d.%d.%d", 128+j, i/250, 1+i%250)
				}
				if _, err := cs.DiscoveryV1().EndpointSlices(svc.Namespace).Create(ctx, slice(svc, svc.Name+"-1", ips...), metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	defer func(c, a, v string) { contentType, acceptTypes, listFromVersion = c, a, v }(contentType, acceptTypes, listFromVersion)
	for _, mode := range []struct {
		name, content, accept, version string
		sequential                     bool
	}{
		{"json-etcd-sequential", "application/json", "application/json", "", true},
		{"json-etcd", "application/json", "application/json", "", false},
		{"protobuf-etcd", contentType, acceptTypes, "", false},
		{"protobuf-cache", contentType, acceptTypes, "0", false},
	} {
		b.Run(mode.name, func(b *testing.B) {
			contentType, acceptTypes, listFromVersion = mode.content, mode.accept, mode.version
			src, err := NewSource(rc)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				var objs listing
				if mode.sequential {
					objs, err = listSequentially(ctx, src)
				} else {
					objs, err = listObjects(ctx, src, testNode)
				}
				if err != nil {
					b.Fatal(err)
				}
				if len(objs.svcs) < n || len(objs.eps) < n {
					b.Fatalf("listed %d Services and %d slices, want %d", len(objs.svcs), len(objs.eps), n)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/1e6/float64(b.N), "client-cpu-ms/op")
		})
	}
}

// listSequentially is listObjects as status did it before: one request after the other.
func listSequentially(ctx context.Context, src Source) (listing, error) {
	var o listing
	var err error
	if o.node, err = src.Node(ctx, testNode); err != nil {
		return o, err
	}
	if o.svcs, err = src.Services(ctx, serviceSelector); err != nil {
		return o, err
	}
	o.eps, err = src.EndpointSlices(ctx, sliceSelector)
	return o, err
}
