package e2e

// Helpers of the upstream mirrors (upstream_*_test.go): what the kernel's IPVS table holds,
// and a barrier that waits until the proxier has synced after an API change.

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubevs/kubevs/test/podsim"
)

// ipvsRealServers lists the real servers (IP:PORT, sorted) of the virtual server at vs
// (IP:PORT) of protocol proto ("TCP", "UDP"), and whether that virtual server exists.
func ipvsRealServers(ctx context.Context, proto, vs string) ([]string, bool, error) {
	out, err := exec.CommandContext(ctx, "ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		return nil, false, fmt.Errorf("ipvsadm -Ln: %w: %s", err, out)
	}
	var rs []string
	found, in := false, false
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 2 && (fields[0] == "TCP" || fields[0] == "UDP" || fields[0] == "SCTP"):
			in = fields[0] == proto && fields[1] == vs
			found = found || in
		case in && len(fields) >= 2 && fields[0] == "->" && fields[1] != "RemoteAddress:Port":
			rs = append(rs, fields[1])
		}
	}
	slices.Sort(rs)
	return rs, found, nil
}

// expectRealServers waits until the virtual server proto vs has exactly the real servers
// want (IP:PORT).
func (f *Framework) expectRealServers(proto, vs string, want ...string) {
	f.t.Helper()
	want = slices.Sorted(slices.Values(want))
	f.Eventually(fmt.Sprintf("IPVS %s %s has real servers %v", proto, vs, want), func(ctx context.Context) error {
		got, found, err := ipvsRealServers(ctx, proto, vs)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("no virtual server")
		case !slices.Equal(got, want):
			return fmt.Errorf("real servers %v", got)
		}
		return nil
	})
}

var barriers atomic.Int32

// proxierSynced is a barrier: it creates a selector-less Service, waits until the proxier has
// programmed its virtual server, and deletes it again. A check that follows sees a proxier
// that has synced after every API change made before the call, so a check that an answer has
// not changed is not merely early.
func (f *Framework) proxierSynced() {
	f.t.Helper()
	name := fmt.Sprintf("barrier-%d", barriers.Add(1))
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	services := f.Client.CoreV1().Services(f.Namespace)
	created, err := services.Create(f.ctx, svc, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatalf("create barrier service %s: %v", name, err)
	}
	defer func() {
		if err := services.Delete(f.ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			f.t.Errorf("delete barrier service %s: %v", name, err)
		}
	}()
	vs := echoAddr(created, "http")
	f.Eventually("the proxier programs barrier service "+vs, func(ctx context.Context) error {
		_, found, err := ipvsRealServers(ctx, "TCP", vs)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no virtual server %s yet", vs)
		}
		return nil
	})
}

// realServer is the real server (POD-IP:HTTP-PORT) of each pod's HTTP port.
func realServer(pods ...*podsim.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = net.JoinHostPort(p.IP.String(), fmt.Sprint(p.HTTPPort()))
	}
	return out
}

// createLocalAndRemoteSlice writes the EndpointSlice of the selector-less Service svc by hand:
// pod local on this node and remoteIP on another node, both ready, on svc's "http" port.
func (f *Framework) createLocalAndRemoteSlice(svc *corev1.Service, local *podsim.Pod, remoteIP string) {
	f.t.Helper()
	ready := discoveryv1.EndpointConditions{Ready: ptr.To(true)}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: f.Namespace,
			Name:      svc.Name + "-manual",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc.Name,
				discoveryv1.LabelManagedBy:   "e2e.kubevs.io",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{local.IP.String()}, NodeName: ptr.To(f.Bed.NodeName()), Conditions: ready},
			{Addresses: []string{remoteIP}, NodeName: ptr.To("other-node"), Conditions: ready},
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(local.HTTPPort())), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if _, err := f.Client.DiscoveryV1().EndpointSlices(f.Namespace).Create(f.ctx, slice, metav1.CreateOptions{}); err != nil {
		f.t.Fatalf("create endpointslice %s: %v", slice.Name, err)
	}
}
