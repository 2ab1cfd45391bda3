package tracker

import (
	"fmt"
	"runtime"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kubevs/kubevs/internal/testenv"
)

// BenchmarkInformerCacheBytes reports the heap held by the Service and EndpointSlice
// informer caches for 10,000 Services with one slice of 10 endpoints each, as served
// objects (servedService, servedSlice: kubectl-applied Services, controller-written
// slices, with managedFields) decoded from protobuf as the informers do, with and without
// Transform. Metric: MB/cache (held after a GC) and B/service, for both caches and for
// each alone (objects=services, objects=slices).
func BenchmarkInformerCacheBytes(b *testing.B) {
	const services, endpoints = 10000, 10
	for _, tc := range []struct {
		name      string
		transform cache.TransformFunc
	}{{"transform=none", func(o any) (any, error) { return o, nil }}, {"transform=strip", Transform}} {
		for _, objects := range []string{"all", "services", "slices"} {
			b.Run(tc.name+"/objects="+objects, func(b *testing.B) {
				benchCacheBytes(b, tc.transform, objects != "slices", objects != "services", services, endpoints)
			})
		}
	}
}

func benchCacheBytes(b *testing.B, transform cache.TransformFunc, withServices, withSlices bool, services, endpoints int) {
	types := []string{"ClusterIP", "NodePort", "LoadBalancer"}
	var held uint64
	for range b.N {
		before := testenv.LiveHeap()
		svcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		slices := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		for i := range services {
			name := fmt.Sprintf("svc-%d", i)
			if withServices {
				add(b, svcs, transform, servedService(name, types[i%3], i), &v1.Service{})
			}
			if withSlices {
				add(b, slices, transform, servedSlice(name, i, endpoints), &discoveryv1.EndpointSlice{})
			}
		}
		held = testenv.LiveHeap() - before
		runtime.KeepAlive(svcs)
		runtime.KeepAlive(slices)
	}
	b.ReportMetric(float64(held)/(1<<20), "MB/cache")
	b.ReportMetric(float64(held)/float64(services), "B/service")
}

// protoObject is an API object with its generated protobuf methods.
type protoObject interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// add decodes a fresh copy of served from its protobuf encoding into into (as the
// informer's decoder allocates it), transforms it and stores it.
func add(b *testing.B, store cache.Indexer, transform cache.TransformFunc, served, into protoObject) {
	raw, err := served.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	if err := into.Unmarshal(raw); err != nil {
		b.Fatal(err)
	}
	obj, err := transform(into)
	if err != nil {
		b.Fatal(err)
	}
	if err := store.Add(obj); err != nil {
		b.Fatal(err)
	}
}
