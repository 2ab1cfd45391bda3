package bench

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/test/bed"
)

// fakeAPI is a fake clientset that allocates ClusterIPs from 10.96.0.1 on, as the API
// server would, and turns away the first tooMany writes with 429.
func fakeAPI(tooMany int32) *fake.Clientset {
	c := fake.NewClientset()
	var next atomic.Uint32
	var refused atomic.Int32
	c.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if refused.Add(1) <= tooMany {
			return true, nil, apierrors.NewTooManyRequests("slow down", 0)
		}
		return false, nil, nil
	})
	c.PrependReactor("create", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
		svc := a.(k8stesting.CreateAction).GetObject().(*corev1.Service)
		if svc.Spec.ClusterIP == "" { // allocated, as the API server does, unless asked for
			svc.Spec.ClusterIP = offset(netip.MustParseAddr("10.96.0.1"), next.Add(1)-1).String()
		}
		return false, nil, nil // the tracker stores the mutated object
	})
	return c
}

func TestCreateCluster(t *testing.T) {
	ctx := context.Background()
	client := fakeAPI(2)
	c, err := CreateCluster(ctx, client, 25, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	slices, err := client.DiscoveryV1().EndpointSlices(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(slices.Items) != 25 || len(c.Keys()) != 25 {
		t.Fatalf("%d slices, %d distinct keys; want 25 of each", len(slices.Items), len(c.Keys()))
	}
	addrs := map[string]bool{}
	for _, s := range slices.Items {
		if s.Labels[discoveryv1.LabelServiceName] != s.Name || s.Labels[discoveryv1.LabelManagedBy] != managedBy {
			t.Errorf("slice %s labels %v", s.Name, s.Labels)
		}
		if len(s.Endpoints) != 3 || *s.Ports[0].Port != endpointPort {
			t.Errorf("slice %s: %d endpoints, port %d; want 3, %d", s.Name, len(s.Endpoints), *s.Ports[0].Port, endpointPort)
		}
		for _, e := range s.Endpoints {
			if addrs[e.Addresses[0]] {
				t.Errorf("address %s used twice", e.Addresses[0])
			}
			addrs[e.Addresses[0]] = true
			if !*e.Conditions.Ready {
				t.Errorf("slice %s: endpoint %s not ready", s.Name, e.Addresses[0])
			}
		}
	}
	svc, err := client.CoreV1().Services(Namespace).Get(ctx, ServiceName(7), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := ipvs.Key{Address: netip.MustParseAddr(svc.Spec.ClusterIP), Protocol: ipvs.TCP, Port: servicePort}
	if got := c.Key(7); got != want {
		t.Errorf("Key(7) = %v, want %v", got, want)
	}
	if svc.Spec.ClusterIP != "10.96.1.7" {
		t.Errorf("Service 7's spec.clusterIP = %q, want 10.96.1.7 (set by the benchmark, not allocated)", svc.Spec.ClusterIP)
	}
}

// TestAdoptCluster: a cluster the host's half wrote is adopted with the same virtual servers
// and real servers, its changes hand out addresses none of the written slices holds and
// update the listed slices, and a missing slice or a slice of another size fails the run.
func TestAdoptCluster(t *testing.T) {
	ctx := context.Background()
	client := fakeAPI(2)
	written, err := CreateCluster(ctx, client, 25, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	c, err := AdoptCluster(ctx, client, 25, 3)
	if err != nil {
		t.Fatal(err)
	}
	addrs := cmp.Options{cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })}
	if d := cmp.Diff(written.Keys(), c.Keys(), addrs); d != "" {
		t.Errorf("adopted virtual servers (-written +adopted):\n%s", d)
	}
	sortTargets := func(ts []Target) []Target {
		slices.SortFunc(ts, func(a, b Target) int {
			return strings.Compare(a.RS.String()+a.Key.String(), b.RS.String()+b.Key.String())
		})
		return ts
	}
	if d := cmp.Diff(sortTargets(written.Targets()), sortTargets(c.Targets()), addrs); d != "" {
		t.Errorf("adopted real servers (-written +adopted):\n%s", d)
	}
	key, rs, err := c.AddEndpoint(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range written.Targets() {
		if tg.RS == rs {
			t.Errorf("the adopted cluster's change added %s, which Service %s already had", rs, tg.Key)
		}
	}
	if key != c.Key(7) {
		t.Errorf("change of Service 7 at %v, want %v", key, c.Key(7))
	}
	if err := client.DiscoveryV1().EndpointSlices(Namespace).Delete(ctx, ServiceName(3), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := AdoptCluster(ctx, client, 25, 3); err == nil || !strings.Contains(err.Error(), ServiceName(3)) {
		t.Errorf("adopting with a slice missing: %v, want an error naming %s", err, ServiceName(3))
	}
	if _, err := AdoptCluster(ctx, client, 2, 4); err == nil {
		t.Error("adopting slices of 3 endpoints as slices of 4 succeeded")
	}
}

// TestClusterIPOf: the benchmark's ClusterIPs are distinct, inside the bed's service range and
// above its first 256 addresses, for as many Services as fit; more are refused.
func TestClusterIPOf(t *testing.T) {
	p := netip.MustParsePrefix(bed.ServiceCIDR)
	low := p.Addr()
	for range 256 {
		low = low.Next()
	}
	for _, i := range []int{0, 1, 255, 256, 50000, maxServices - 1} {
		a := ClusterIPOf(i)
		if !p.Contains(a) || a.Less(low) {
			t.Errorf("ClusterIPOf(%d) = %s: outside %s or in its first 256 addresses", i, a, p)
		}
	}
	if last := ClusterIPOf(maxServices - 1); last.Next() != netip.MustParseAddr("10.96.255.255") {
		t.Errorf("the last Service's ClusterIP is %s: want the range used up to its last address but one", last)
	}
	if _, err := CreateCluster(context.Background(), fakeAPI(1), maxServices+1, 1, 1); err == nil {
		t.Error("CreateCluster took more Services than the service range holds")
	}
}

func TestCreateClusterNamesTheObjectOnError(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("create", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "endpointslices"}, "x", fmt.Errorf("no"))
	})
	client.PrependReactor("create", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
		a.(k8stesting.CreateAction).GetObject().(*corev1.Service).Spec.ClusterIP = "10.96.0.10"
		return false, nil, nil
	})
	_, err := CreateCluster(context.Background(), client, 1, 1, 1)
	if err == nil || !strings.Contains(err.Error(), "endpointslice bench/svc-00000") {
		t.Errorf("err = %v, want one naming endpointslice bench/svc-00000", err)
	}
}

func TestAddEndpointConcurrent(t *testing.T) {
	ctx := context.Background()
	client := fakeAPI(0)
	c, err := CreateCluster(ctx, client, 3, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 10 concurrent changes of one Service: each must land (no lost update).
	var wg sync.WaitGroup
	var mu sync.Mutex
	added := map[netip.AddrPort]bool{}
	for range 10 {
		wg.Go(func() {
			key, rs, err := c.AddEndpoint(ctx, 1)
			if err != nil || key != c.Key(1) {
				t.Errorf("AddEndpoint = %v, %v, %v", key, rs, err)
				return
			}
			mu.Lock()
			added[rs] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	s, err := client.DiscoveryV1().EndpointSlices(Namespace).Get(ctx, ServiceName(1), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Endpoints) != 12 || len(added) != 10 {
		t.Fatalf("slice has %d endpoints, %d distinct new ones; want 12 and 10", len(s.Endpoints), len(added))
	}
	for _, e := range s.Endpoints[2:] {
		if !added[netip.AddrPortFrom(netip.MustParseAddr(e.Addresses[0]), endpointPort)] {
			t.Errorf("endpoint %s in the slice but not returned", e.Addresses[0])
		}
	}
}

// An update whose first try timed out on the server but landed is retried and conflicts:
// AddEndpoint reads the slice back and finds its endpoint there, with no duplicate.
func TestAddEndpointAfterALandedTimeout(t *testing.T) {
	ctx := context.Background()
	client := fakeAPI(0)
	c, err := CreateCluster(ctx, client, 1, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	client.PrependReactor("update", "endpointslices", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if calls.Add(1) > 1 {
			return false, nil, nil
		}
		// The first try lands, but the client hears a timeout.
		obj := a.(k8stesting.UpdateAction).GetObject()
		if err := client.Tracker().Update(a.GetResource(), obj, a.GetNamespace()); err != nil {
			t.Error(err)
		}
		return true, nil, apierrors.NewServerTimeout(schema.GroupResource{Resource: "endpointslices"}, "update", 1)
	})
	client.PrependReactor("update", "endpointslices", func(a k8stesting.Action) (bool, runtime.Object, error) {
		// The fake tracker checks no resourceVersion: play the API server's conflict.
		s := a.(k8stesting.UpdateAction).GetObject().(*discoveryv1.EndpointSlice)
		cur, err := client.Tracker().Get(a.GetResource(), a.GetNamespace(), s.Name)
		if err != nil {
			return true, nil, err
		}
		if len(cur.(*discoveryv1.EndpointSlice).Endpoints) >= len(s.Endpoints) {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "endpointslices"}, s.Name, fmt.Errorf("modified"))
		}
		return false, nil, nil
	})
	_, rs, err := c.AddEndpoint(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.DiscoveryV1().EndpointSlices(Namespace).Get(ctx, ServiceName(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Endpoints) != 2 || s.Endpoints[1].Addresses[0] != rs.Addr().String() {
		t.Errorf("slice endpoints %v, want the first and %s once", s.Endpoints, rs.Addr())
	}
}

// Writes the API server turned away because the connection broke under load are retried;
// a create whose first try landed is read back.
// tlsTimeout is net/http's TLS handshake timeout error (a net.Error that timed out).
type tlsTimeout struct{}

func (tlsTimeout) Error() string   { return "net/http: TLS handshake timeout" }
func (tlsTimeout) Timeout() bool   { return true }
func (tlsTimeout) Temporary() bool { return true }

func TestCreateClusterRetriesLostConnections(t *testing.T) {
	client := fakeAPI(0)
	var calls atomic.Int32
	client.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		switch calls.Add(1) {
		case 2: // the Service's first try: the connection is lost before the answer
			return true, nil, fmt.Errorf("unexpected error when reading response body. Please retry. Original error: http2: client connection lost")
		case 3: // the Service's second try: the TLS handshake times out
			return true, nil, &url.Error{Op: "Post", URL: "https://127.0.0.1:6443", Err: tlsTimeout{}}
		case 5: // the slice's first try lands, and the answer is lost
			if err := client.Tracker().Create(a.GetResource(), a.(k8stesting.CreateAction).GetObject(), a.GetNamespace()); err != nil {
				t.Error(err)
			}
			return true, nil, fmt.Errorf("read: connection reset by peer")
		}
		return false, nil, nil
	})
	c, err := CreateCluster(context.Background(), client, 1, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets()) != 2 {
		t.Errorf("targets %v, want 2", c.Targets())
	}
}
