package e2e

// Churn for the soak: bursts of API changes from the soak's RNG. Selector-less Services
// (ClusterIP or NodePort) come and go with EndpointSlices the soak writes itself, pointing at
// the fixed backends in random subsets and readiness; pods behind a selector Service are
// created and deleted through the real CNI chain (ADD and DEL register and unregister them
// with the proxier). Every ClusterIP a churned Service had is remembered for the leak check.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubevs/kubevs/test/podsim"
)

// Bounds of the churn: enough objects to keep the proxier busy, few enough for the guest.
const (
	maxChurnServices = 12
	maxChurnPods     = 2
)

type churner struct {
	f        *Framework
	rng      *rand.Rand
	backends []*podsim.Pod
	svcs     map[string]*corev1.Service
	pods     []*podsim.Pod
	seq      int
	// everIPs holds every ClusterIP a churned Service had.
	everIPs map[string]bool
	ops     int
}

func newChurner(f *Framework, rng *rand.Rand, backends []*podsim.Pod) *churner {
	return &churner{f: f, rng: rng, backends: backends, svcs: map[string]*corev1.Service{}, everIPs: map[string]bool{}}
}

// burst makes n random changes, one after another, as fast as the API server takes them.
func (c *churner) burst(ctx context.Context, n int) error {
	for range n {
		var err error
		switch r := c.rng.IntN(20); {
		case r == 0 && len(c.pods) < maxChurnPods:
			err = c.createPod(ctx)
		case r == 1 && len(c.pods) > 0:
			err = c.deletePod(ctx)
		case r < 9 && len(c.svcs) < maxChurnServices:
			err = c.createService(ctx)
		case r < 13 && len(c.svcs) > 0:
			err = c.deleteService(ctx, c.pick())
		case len(c.svcs) > 0:
			err = c.writeSlice(ctx, c.pick(), true)
		default:
			err = c.createService(ctx)
		}
		if err != nil {
			return err
		}
		c.ops++
	}
	return nil
}

func (c *churner) pick() string {
	names := keysOf(c.svcs)
	return names[c.rng.IntN(len(names))]
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (c *churner) createService(ctx context.Context) error {
	c.seq++
	name := fmt.Sprintf("churn-%d", c.seq)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.f.Namespace, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(podsim.DefaultHTTPPort)},
			{Name: "udp-echo", Port: 9000, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(podsim.DefaultEchoPort)},
		}},
	}
	if c.rng.IntN(3) == 0 {
		svc.Spec.Type = corev1.ServiceTypeNodePort
	}
	created, err := c.f.Client.CoreV1().Services(c.f.Namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("churn: create service %s: %w", name, err)
	}
	c.svcs[name] = created
	c.everIPs[created.Spec.ClusterIP] = true
	return c.writeSlice(ctx, name, false)
}

// writeSlice creates or replaces the Service's EndpointSlice with a random subset of the
// backends, each ready or not.
func (c *churner) writeSlice(ctx context.Context, name string, update bool) error {
	return putSlice(ctx, c.f.Client, c.slice(name, c.rng), update)
}

// slice is an EndpointSlice for the churned Service name with a random subset of the
// backends, each ready or not, drawn from rng.
func (c *churner) slice(name string, rng *rand.Rand) *discoveryv1.EndpointSlice {
	return c.sliceWith(name, rng, 0)
}

// remoteEndpoints is how many endpoints on another node (remoteNode) the endpoint churn adds
// to each slice besides the local backends: a write then changes about ten endpoints, as a
// rolling update of a large Deployment does, instead of at most two. Their addresses
// (remoteBase, a benchmarking range no pod or node of the bed holds) answer nothing: no
// probe or flow goes to a churned Service.
const (
	remoteEndpoints = 16
	remoteNode      = "soak-remote-node"
)

var remoteBase = netip.MustParseAddr("198.18.0.10")

// sliceWith is slice with remote more endpoints on remoteNode.
func (c *churner) sliceWith(name string, rng *rand.Rand, remote int) *discoveryv1.EndpointSlice {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.f.Namespace, Name: name + "-soak", Labels: map[string]string{
			discoveryv1.LabelServiceName: name,
			discoveryv1.LabelManagedBy:   "soak.e2e.kubevs.io",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("http"), Port: ptr.To(int32(podsim.DefaultHTTPPort)), Protocol: ptr.To(corev1.ProtocolTCP)},
			{Name: ptr.To("udp-echo"), Port: ptr.To(int32(podsim.DefaultEchoPort)), Protocol: ptr.To(corev1.ProtocolUDP)},
		},
	}
	for _, p := range c.backends {
		if rng.IntN(3) == 0 {
			continue
		}
		ready := rng.IntN(4) != 0
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.IP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)},
			NodeName:   ptr.To(c.f.Bed.NodeName()),
		})
	}
	addr := remoteBase
	for range remote {
		if rng.IntN(3) != 0 {
			ready := rng.IntN(4) != 0
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{addr.String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)},
				NodeName:   ptr.To(remoteNode),
			})
		}
		addr = addr.Next()
	}
	return slice
}

// endpointChanges counts the endpoints whose presence or readiness differs between two
// slices of one Service (nil: none before).
func endpointChanges(before, after *discoveryv1.EndpointSlice) int {
	state := func(s *discoveryv1.EndpointSlice) map[string]bool {
		m := map[string]bool{}
		if s != nil {
			for _, e := range s.Endpoints {
				m[e.Addresses[0]] = ptr.Deref(e.Conditions.Ready, false)
			}
		}
		return m
	}
	b, a := state(before), state(after)
	n := 0
	for addr, ready := range a {
		if was, ok := b[addr]; !ok || was != ready {
			n++
		}
	}
	for addr := range b {
		if _, ok := a[addr]; !ok {
			n++
		}
	}
	return n
}

// putSlice creates slice, or replaces it when update (creating it if it is gone).
func putSlice(ctx context.Context, client kubernetes.Interface, slice *discoveryv1.EndpointSlice, update bool) error {
	api := client.DiscoveryV1().EndpointSlices(slice.Namespace)
	if update {
		_, err := api.Update(ctx, slice, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("churn: update endpointslice %s: %w", slice.Name, err)
		}
	}
	if _, err := api.Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("churn: create endpointslice %s: %w", slice.Name, err)
	}
	return nil
}

func (c *churner) deleteService(ctx context.Context, name string) error {
	err := c.f.Client.DiscoveryV1().EndpointSlices(c.f.Namespace).Delete(ctx, name+"-soak", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("churn: delete endpointslice %s-soak: %w", name, err)
	}
	err = c.f.Client.CoreV1().Services(c.f.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("churn: delete service %s: %w", name, err)
	}
	delete(c.svcs, name)
	return nil
}

func (c *churner) createPod(ctx context.Context) error {
	c.seq++
	p, err := c.f.Sim.Create(ctx, podsim.PodSpec{Namespace: c.f.Namespace, Name: fmt.Sprintf("churnpod-%d", c.seq), Labels: map[string]string{"app": "churnpod"}})
	if err != nil {
		return fmt.Errorf("churn: create pod: %w", err)
	}
	c.pods = append(c.pods, p)
	return nil
}

func (c *churner) deletePod(ctx context.Context) error {
	i := c.rng.IntN(len(c.pods))
	p := c.pods[i]
	c.pods = append(c.pods[:i], c.pods[i+1:]...)
	if err := p.Delete(ctx); err != nil {
		return fmt.Errorf("churn: %w", err)
	}
	return nil
}

// clear deletes every churned Service and pod.
func (c *churner) clear(ctx context.Context) error {
	for _, name := range keysOf(c.svcs) {
		if err := c.deleteService(ctx, name); err != nil {
			return err
		}
	}
	for len(c.pods) > 0 {
		if err := c.deletePod(ctx); err != nil {
			return err
		}
	}
	return nil
}
