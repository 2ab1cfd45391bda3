package status

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/<name>.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

const testNode = "node-a"

func ptr[T any](v T) *T { return &v }

// service returns a ClusterIP Service "ns/name" on ip with ports "PROTO:port".
func service(name, ip string, ports ...string) *v1.Service {
	ns, n, _ := strings.Cut(name, "/")
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip}},
	}
	for _, p := range ports {
		proto, num, _ := strings.Cut(p, ":")
		port, _ := strconv.Atoi(num)
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: strings.ToLower(proto) + num, Protocol: v1.Protocol(proto), Port: int32(port)})
	}
	return s
}

// slice returns an EndpointSlice of svc with the ready endpoints ips, each port of svc
// targeting port+8000.
func slice(svc *v1.Service, name string, ips ...string) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	if len(ips) > 0 && strings.Contains(ips[0], ":") {
		sl.AddressType = discoveryv1.AddressTypeIPv6
	}
	for _, p := range svc.Spec.Ports {
		sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: ptr(p.Name), Protocol: ptr(p.Protocol), Port: ptr(p.Port + 8000)})
	}
	for _, ip := range ips {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}, NodeName: ptr("node-b")})
	}
	return sl
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
