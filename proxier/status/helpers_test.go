package status

import (
	"context"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/kubevs/kubevs/proxier/internal/fixture"
)

const testNode = "node-a"

func ptr[T any](v T) *T { return &v }

// service returns a ClusterIP Service "ns/name" on ip with ports "PROTO:port".
func service(name, ip string, ports ...string) *v1.Service {
	return fixture.Service(name, fixture.ClusterIPs(ip), fixture.Ports(fixture.PortSpecs(ports...)...))
}

// slice returns an EndpointSlice of svc with the ready endpoints ips on node-b, each port of
// svc targeting port+8000.
func slice(svc *v1.Service, name string, ips ...string) *discoveryv1.EndpointSlice {
	var eps []discoveryv1.Endpoint
	for _, ip := range ips {
		eps = append(eps, fixture.Endpoint(ip, fixture.Ready(true), fixture.OnNode("node-b")))
	}
	return fixture.Slice(svc.Namespace+"/"+name, fixture.OfService(svc.Name), fixture.TargetPorts(svc, 8000), fixture.Endpoints(eps...))
}

// node returns the Node testNode with pod CIDRs and the InternalIP 192.168.0.10.
func node(podCIDRs ...string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode}, Spec: v1.NodeSpec{PodCIDRs: podCIDRs},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "192.168.0.10"}}}}
}

// objects is a cluster: the objects for the fake clientset.
func objects(os ...runtime.Object) []runtime.Object { return os }

// clientsetSource is a Source over a client-go clientset (the fake one in tests).
type clientsetSource struct{ c kubernetes.Interface }

func (s clientsetSource) Node(ctx context.Context, name string) (*v1.Node, error) {
	n, err := s.c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return n, err
}

func (s clientsetSource) Services(ctx context.Context, selector string) ([]v1.Service, error) {
	l, err := s.c.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

func (s clientsetSource) EndpointSlices(ctx context.Context, selector string) ([]discoveryv1.EndpointSlice, error) {
	l, err := s.c.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}
