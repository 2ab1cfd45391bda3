package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/test/apiretry"
	"github.com/kubevs/kubevs/test/bed"
)

// What the benchmark's Services look like: one TCP port, endpoints on another.
const (
	// Namespace holds every object the benchmark writes.
	Namespace    = "bench"
	servicePort  = 80
	endpointPort = 8080
	// managedBy marks the benchmark's slices, so the endpointslice controller leaves them be.
	managedBy = "kubevs-bench"
)

// endpointBase is the first endpoint address; addresses are handed out in order from it
// (100.64.0.0/10 holds four million).
var endpointBase = netip.MustParseAddr("100.64.0.0")

// Cluster is the benchmark's Services and their EndpointSlices in the API server, with the
// last slice written for each, so that a change is one Update with no read. AddEndpoint is
// safe for concurrent use; changes of one Service are serialised.
type Cluster struct {
	client kubernetes.Interface
	// VIPs are the Services' ClusterIPs, by index.
	VIPs []netip.Addr

	locks  []sync.Mutex
	slices []*discoveryv1.EndpointSlice
	next   atomic.Uint32 // offset of the next endpoint address from endpointBase
}

// ServiceName names Service i.
func ServiceName(i int) string { return fmt.Sprintf("svc-%05d", i) }

// nextAddr hands out the next endpoint address.
func (c *Cluster) nextAddr() netip.Addr {
	return offset(endpointBase, c.next.Add(1)-1)
}

// clusterIPBase is Service 0's ClusterIP: above the first 256 addresses of the bed's
// service range, where the API server's own allocations (the kubernetes Service) go.
var clusterIPBase = func() uint32 {
	p := netip.MustParsePrefix(bed.ServiceCIDR)
	a := p.Addr().As4()
	return binary.BigEndian.Uint32(a[:]) + 256
}()

// maxServices is how many Services ClusterIPOf can place in the bed's service range.
var maxServices = 1<<(32-netip.MustParsePrefix(bed.ServiceCIDR).Bits()) - 256 - 1

// ClusterIPOf is Service i's ClusterIP, set in its spec. Left to the API server, each
// allocation grew with the Services allocated before it: 26 ms a Service on average up to
// 10,000, 80 ms apiece past 20,000, so writing 50,000 would have taken hours.
func ClusterIPOf(i int) netip.Addr {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], clusterIPBase+uint32(i))
	return netip.AddrFrom4(a)
}

func service(i int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName(i), Namespace: Namespace},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: ClusterIPOf(i).String(),
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: servicePort, TargetPort: intstr.FromInt32(endpointPort),
			}},
		},
	}
}

func endpoint(a netip.Addr) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{a.String()},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
	}
}

func (c *Cluster) slice(i, endpoints int) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: ServiceName(i), Namespace: Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: ServiceName(i), discoveryv1.LabelManagedBy: managedBy},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](endpointPort)}},
	}
	for range endpoints {
		s.Endpoints = append(s.Endpoints, endpoint(c.nextAddr()))
	}
	return s
}

// CreateCluster writes the namespace, n Services and n EndpointSlices of endpoints each,
// with writers parallel clients; it returns once all are written.
func CreateCluster(ctx context.Context, client kubernetes.Interface, n, endpoints, writers int) (*Cluster, error) {
	if n > maxServices {
		return nil, fmt.Errorf("%d Services do not fit the service range %s (at most %d)", n, bed.ServiceCIDR, maxServices)
	}
	c := &Cluster{client: client, VIPs: make([]netip.Addr, n), locks: make([]sync.Mutex, n), slices: make([]*discoveryv1.EndpointSlice, n)}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	_, err := retryWrite(ctx, func() (*corev1.Namespace, error) {
		return client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", Namespace, err)
	}
	err = apiretry.Each(ctx, n, writers, func(ctx context.Context, i int) error {
		svc, err := retryWrite(ctx, func() (*corev1.Service, error) {
			return client.CoreV1().Services(Namespace).Create(ctx, service(i), metav1.CreateOptions{})
		})
		if apierrors.IsAlreadyExists(err) { // a retried create whose first try landed
			svc, err = client.CoreV1().Services(Namespace).Get(ctx, ServiceName(i), metav1.GetOptions{})
		}
		if err != nil {
			return fmt.Errorf("create service %s/%s: %w", Namespace, ServiceName(i), err)
		}
		vip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil {
			return fmt.Errorf("service %s/%s: spec.clusterIP %q: %w", Namespace, svc.Name, svc.Spec.ClusterIP, err)
		}
		c.VIPs[i] = vip
		want := c.slice(i, endpoints)
		got, err := retryWrite(ctx, func() (*discoveryv1.EndpointSlice, error) {
			return client.DiscoveryV1().EndpointSlices(Namespace).Create(ctx, want, metav1.CreateOptions{})
		})
		if apierrors.IsAlreadyExists(err) {
			got, err = client.DiscoveryV1().EndpointSlices(Namespace).Get(ctx, want.Name, metav1.GetOptions{})
		}
		if err != nil {
			return fmt.Errorf("create endpointslice %s/%s: %w", Namespace, want.Name, err)
		}
		c.slices[i] = got
		return nil
	})
	return c, err
}

// AdoptCluster is the Cluster of n Services of endpoints each that CreateCluster wrote
// earlier (the host's half, ServeControlPlane's Preload): their ClusterIPs are
// ClusterIPOf's, and the slices are listed once (500 a page), for the resource versions the
// changes update from. It fails when a Service's slice is missing or holds another count
// of endpoints: a run must not measure a cluster other than the one it reports.
func AdoptCluster(ctx context.Context, client kubernetes.Interface, n, endpoints int) (*Cluster, error) {
	c := &Cluster{client: client, VIPs: make([]netip.Addr, n), locks: make([]sync.Mutex, n), slices: make([]*discoveryv1.EndpointSlice, n)}
	index := make(map[string]int, n)
	for i := range n {
		c.VIPs[i] = ClusterIPOf(i)
		index[ServiceName(i)] = i
	}
	opts := metav1.ListOptions{Limit: 500}
	for {
		var list *discoveryv1.EndpointSliceList
		err := apiretry.Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second, Budget: writeRetryBudget}.Do(ctx, func() error {
			var err error
			list, err = client.DiscoveryV1().EndpointSlices(Namespace).List(ctx, opts)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list the preloaded endpointslices of %s: %w", Namespace, err)
		}
		for i := range list.Items {
			s := &list.Items[i]
			if j, ok := index[s.Name]; ok {
				c.slices[j] = s
			}
		}
		if opts.Continue = list.Continue; opts.Continue == "" {
			break
		}
	}
	for i, s := range c.slices {
		if s == nil || len(s.Endpoints) != endpoints {
			got := -1
			if s != nil {
				got = len(s.Endpoints)
			}
			return nil, fmt.Errorf("preloaded endpointslice %s/%s: %d endpoints, want %d (-1: absent)", Namespace, ServiceName(i), got, endpoints)
		}
	}
	c.next.Store(uint32(n * endpoints)) // CreateCluster handed out the addresses before these
	return c, nil
}

// Key is the virtual server of Service i.
func (c *Cluster) Key(i int) ipvs.Key {
	return ipvs.Key{Address: c.VIPs[i], Protocol: ipvs.TCP, Port: servicePort}
}

// Keys are every Service's virtual server.
func (c *Cluster) Keys() map[ipvs.Key]bool {
	m := make(map[ipvs.Key]bool, len(c.VIPs))
	for i := range c.VIPs {
		m[c.Key(i)] = true
	}
	return m
}

// Target is one real server the benchmark waits for.
type Target struct {
	Key ipvs.Key
	RS  netip.AddrPort
}

// Targets are the real servers of every endpoint written so far.
func (c *Cluster) Targets() []Target {
	var out []Target
	for i := range c.slices {
		c.locks[i].Lock()
		for _, e := range c.slices[i].Endpoints {
			out = append(out, Target{c.Key(i), netip.AddrPortFrom(netip.MustParseAddr(e.Addresses[0]), endpointPort)})
		}
		c.locks[i].Unlock()
	}
	return out
}

// AddEndpoint adds one endpoint with a new address to Service i's slice and returns once
// the API server has accepted the update, with the real server the proxier should add.
func (c *Cluster) AddEndpoint(ctx context.Context, i int) (ipvs.Key, netip.AddrPort, error) {
	c.locks[i].Lock()
	defer c.locks[i].Unlock()
	a := c.nextAddr()
	s := c.slices[i]
	for range 5 {
		s = s.DeepCopy()
		s.Endpoints = append(s.Endpoints, endpoint(a))
		got, err := retryWrite(ctx, func() (*discoveryv1.EndpointSlice, error) {
			return c.client.DiscoveryV1().EndpointSlices(Namespace).Update(ctx, s, metav1.UpdateOptions{})
		})
		if err == nil {
			c.slices[i] = got
			return c.Key(i), netip.AddrPortFrom(a, endpointPort), nil
		}
		if !apierrors.IsConflict(err) {
			return ipvs.Key{}, netip.AddrPort{}, fmt.Errorf("add endpoint %s to endpointslice %s/%s: %w", a, Namespace, s.Name, err)
		}
		// A retried write whose first try timed out but landed: read the slice back, and
		// stop if the endpoint is in.
		if s, err = c.client.DiscoveryV1().EndpointSlices(Namespace).Get(ctx, s.Name, metav1.GetOptions{}); err != nil {
			return ipvs.Key{}, netip.AddrPort{}, fmt.Errorf("read endpointslice %s/%s back: %w", Namespace, ServiceName(i), err)
		}
		c.slices[i] = s
		if hasAddress(s, a) {
			return c.Key(i), netip.AddrPortFrom(a, endpointPort), nil
		}
	}
	return ipvs.Key{}, netip.AddrPort{}, fmt.Errorf("add endpoint %s to endpointslice %s/%s: conflicts on every try", a, Namespace, ServiceName(i))
}

func hasAddress(s *discoveryv1.EndpointSlice, a netip.Addr) bool {
	for _, e := range s.Endpoints {
		if len(e.Addresses) > 0 && e.Addresses[0] == a.String() {
			return true
		}
	}
	return false
}

// retryWrite retries a write the API server turned away for load (apiretry.Loaded) for up
// to writeRetryBudget, backing off from 100 ms to 5 s.
func retryWrite[T any](ctx context.Context, write func() (T, error)) (T, error) {
	var v T
	err := apiretry.Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second, Budget: writeRetryBudget}.Do(ctx, func() error {
		var err error
		v, err = write()
		return err
	})
	return v, err
}

// writeRetryBudget bounds the retries of one write.
const writeRetryBudget = 5 * time.Minute
