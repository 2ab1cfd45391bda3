package e2e

// Dual-stack scenarios (issue 5: "an IPv6 ClusterIP and NodePort where the guest has IPv6").
// The bed is dual-stack, IPv4 first: pods 10.244.0.0/24 and fd00:244::/64, node
// 192.168.77.1 and fd00:77::1, outside host 192.168.77.2 and fd00:77::2, services
// 10.96.0.0/16 and fd00:96::/112. TestDualStackBed needs no proxier (it runs on the host
// too); the Service scenarios assert what a client sees over IPv6, as the IPv4 ones do.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/test/bed"
	"github.com/kubevs/kubevs/test/podsim"
)

// requireDualStack skips on a bed started IPv4-only (bed.NetworkConfig.IPv4Only).
func requireDualStack(t *testing.T, f *Framework) {
	t.Helper()
	if !f.Bed.DualStack() {
		t.Skip("the bed is IPv4-only")
	}
}

// ipv6Only makes a SingleStack IPv6 Service.
func ipv6Only(s *corev1.Service) {
	s.Spec.IPFamilyPolicy = new(corev1.IPFamilyPolicySingleStack)
	s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
}

// dualStack makes a RequireDualStack Service, IPv4 first.
func dualStack(s *corev1.Service) {
	s.Spec.IPFamilyPolicy = new(corev1.IPFamilyPolicyRequireDualStack)
	s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
}

func nodePort(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }

// podURLv6 is http://[POD-IPv6]:HTTP-PORT/PATH.
func podURLv6(p *podsim.Pod, path string) string {
	return "http://" + net.JoinHostPort(p.IPv6.String(), fmt.Sprint(p.HTTPPort())) + path
}

// nodePortURLAt is http://IP:NODEPORT/PATH for the Service's port named "http".
func nodePortURLAt(svc *corev1.Service, ip net.IP, path string) string {
	return "http://" + net.JoinHostPort(ip.String(), fmt.Sprint(portNamed(svc, "http").NodePort)) + path
}

// inCIDR fails the test unless ip lies in cidr.
func inCIDR(t *testing.T, what, ip, cidr string) {
	t.Helper()
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatalf("parse %s: %v", cidr, err)
	}
	if a := net.ParseIP(ip); a == nil || !n.Contains(a) {
		t.Errorf("%s %q is not in %s", what, ip, cidr)
	}
}

// ipv6SliceAddresses lists the addresses of the Service's IPv6 EndpointSlices, sorted.
func (f *Framework) ipv6SliceAddresses(ctx context.Context, svc *corev1.Service) ([]string, error) {
	list, err := f.Client.DiscoveryV1().EndpointSlices(svc.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name,
	})
	if err != nil {
		return nil, fmt.Errorf("list endpointslices of %s: %w", svc.Name, err)
	}
	var out []string
	for _, s := range list.Items {
		if s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		for _, e := range s.Endpoints {
			out = append(out, e.Addresses...)
		}
	}
	slices.Sort(out)
	return out, nil
}

// TestDualStackBed: the bed itself over IPv6. Every pod has an address of each family in the
// node's pod ranges, reachable over IPv6 from the node, another pod (which it sees unNATed)
// and the outside host; the API server gives a RequireDualStack Service a ClusterIP from
// each service range, and the EndpointSlice controller publishes an IPv6 slice of the pods'
// IPv6 addresses.
func TestDualStackBed(t *testing.T) {
	f := New(t)
	requireDualStack(t, f)
	pods := f.CreatePods("v6", 2)
	a, b := pods[0], pods[1]
	for _, p := range pods {
		if p.IPv6 == nil {
			t.Fatalf("pod %s has no IPv6 address (IPs %v)", p.Key(), p.IPs())
		}
		inCIDR(t, "pod "+p.Name+" IPv4", p.IP.String(), f.Bed.PodCIDR())
		inCIDR(t, "pod "+p.Name+" IPv6", p.IPv6.String(), f.Bed.PodCIDRv6())
		obj, err := f.Client.CoreV1().Pods(p.Namespace).Get(f.Context(), p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get pod %s: %v", p.Key(), err)
		}
		want := []corev1.PodIP{{IP: p.IP.String()}, {IP: p.IPv6.String()}}
		if diff := cmp.Diff(want, obj.Status.PodIPs); diff != "" {
			t.Errorf("pod %s status.podIPs (-want +got):\n%s", p.Key(), diff)
		}
	}

	f.ExpectHTTP(f.FromNode(), podURLv6(a, "/hostname")).Body(a.Name)
	f.ExpectHTTP(f.FromPod(b), podURLv6(a, "/clientip")).Body(b.IPv6.String())
	f.ExpectHTTP(f.FromOutside(), podURLv6(a, "/clientip")).Body(f.Bed.OutsideIPv6().String())
	f.expectEcho(f.FromPod(b), "udp", net.JoinHostPort(a.IPv6.String(), "9000"), "clientip", b.IPv6.String())

	svc := f.CreateService("v6", dualStack)
	if len(svc.Spec.ClusterIPs) != 2 {
		t.Fatalf("RequireDualStack service got ClusterIPs %v, want one per family", svc.Spec.ClusterIPs)
	}
	inCIDR(t, "IPv4 ClusterIP", svc.Spec.ClusterIPs[0], bed.ServiceCIDR)
	inCIDR(t, "IPv6 ClusterIP", svc.Spec.ClusterIPs[1], bed.ServiceCIDRv6)
	want := []string{a.IPv6.String(), b.IPv6.String()}
	slices.Sort(want)
	f.Eventually("IPv6 EndpointSlice lists both pods", func(ctx context.Context) error {
		got, err := f.ipv6SliceAddresses(ctx, svc)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("IPv6 slice addresses (-want +got):\n%s", diff)
		}
		return nil
	})
}

// TestDualStackIPv6NodePort: a SingleStack IPv6 NodePort Service. Its IPv6 ClusterIP answers
// from the node and from a pod, over TCP and UDP, from every ready backend and never from the
// not-ready one; its NodePort answers on the node's IPv6 address from the outside host.
func TestDualStackIPv6NodePort(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	requireDualStack(t, f)
	svc := f.CreateService("v6np", ipv6Only, nodePort)
	if got := svc.Spec.IPFamilies; !slices.Equal(got, []corev1.IPFamily{corev1.IPv6Protocol}) {
		t.Fatalf("service families %v, want [IPv6]", got)
	}
	inCIDR(t, "ClusterIP", svc.Spec.ClusterIP, bed.ServiceCIDRv6)
	ready := f.CreatePods("v6np", 2)
	f.CreatePod("v6np-unready", "v6np", func(s *podsim.PodSpec) { s.NotReady = true })
	client := f.CreatePod("client", "client")

	f.ExpectHTTP(f.FromNode(), ServiceURL(svc, "/hostname")).Hostname(ready...)
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(ready...)
	// A pod's own source address reaches the backend unNATed, as over IPv4.
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/clientip")).Body(client.IPv6.String())
	f.expectEchoFrom(f.FromPod(client), "udp", net.JoinHostPort(svc.Spec.ClusterIP, "9000"), ready...)
	f.expectEchoFrom(f.FromPod(client), "tcp", net.JoinHostPort(svc.Spec.ClusterIP, "9000"), ready...)

	f.ExpectHTTP(f.FromOutside(), nodePortURLAt(svc, f.Bed.NodeIPv6(), "/hostname")).Hostname(ready...)
	// An IPv6-only Service has no NodePort on the node's IPv4 address.
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Fails()
}

// TestDualStackRequireDualStackService: a RequireDualStack NodePort Service answers on both
// ClusterIPs from the node and from a pod, and on the NodePort of both node addresses from the
// outside host, always from both backends.
func TestDualStackRequireDualStackService(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	requireDualStack(t, f)
	svc := f.CreateService("ds", dualStack, nodePort)
	if len(svc.Spec.ClusterIPs) != 2 {
		t.Fatalf("ClusterIPs %v, want one per family", svc.Spec.ClusterIPs)
	}
	pods := f.CreatePods("ds", 2)
	client := f.CreatePod("client", "client")

	for _, ip := range svc.Spec.ClusterIPs {
		f.ExpectHTTP(f.FromNode(), httpURL(svc, ip, "/hostname")).Hostname(pods...)
		f.ExpectHTTP(f.FromPod(client), httpURL(svc, ip, "/hostname")).Hostname(pods...)
	}
	for _, ip := range f.Bed.NodeIPs() {
		f.ExpectHTTP(f.FromOutside(), nodePortURLAt(svc, ip, "/hostname")).Hostname(pods...)
	}
}

// TestDualStackIPv6ExternalTrafficPolicyLocal: under externalTrafficPolicy=Local an IPv6
// NodePort is not masqueraded, so the backend sees the outside host's own IPv6 address.
func TestDualStackIPv6ExternalTrafficPolicyLocal(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	requireDualStack(t, f)
	svc := f.CreateService("v6local", ipv6Only, nodePort, func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	})
	pods := f.CreatePods("v6local", 2)

	f.ExpectHTTP(f.FromOutside(), nodePortURLAt(svc, f.Bed.NodeIPv6(), "/hostname")).Hostname(pods...)
	f.ExpectHTTP(f.FromOutside(), nodePortURLAt(svc, f.Bed.NodeIPv6(), "/clientip")).Body(f.Bed.OutsideIPv6().String())
}

// TestDualStackIPv6PodReachesItself: hairpin over IPv6. The only backend of an IPv6 Service
// is the client itself, so its packet leaves the pod's bridge port and must come back
// through it, masqueraded.
func TestDualStackIPv6PodReachesItself(t *testing.T) {
	RequirePlugin(t)
	f := New(t)
	requireDualStack(t, f)
	svc := f.CreateService("self6", ipv6Only)
	pods := f.CreatePods("self6", 1)

	f.ExpectHTTP(f.FromPod(pods[0]), ServiceURL(svc, "/hostname")).Hostname(pods[0])
	f.expectEchoFrom(f.FromPod(pods[0]), "udp", net.JoinHostPort(svc.Spec.ClusterIP, "9000"), pods[0])
}

// expectEchoFrom waits until echoes of "hostname" over network to addr from src have been
// answered by every one of pods and, after the first answered, by no other.
func (f *Framework) expectEchoFrom(src Source, network, addr string, pods ...*podsim.Pod) {
	f.t.Helper()
	var want []string
	for _, p := range pods {
		want = append(want, p.Name)
	}
	slices.Sort(want)
	seen := map[string]bool{}
	f.Eventually(fmt.Sprintf("%s %s from %s reaches each of %v", network, addr, src.Name, want), func(ctx context.Context) error {
		for range 4 * len(want) {
			got, err := Echo(ctx, src, network, addr, "hostname")
			if err != nil {
				return err
			}
			if !slices.Contains(want, got) {
				clear(seen)
				return fmt.Errorf("answered by %q, not one of %v", got, want)
			}
			seen[got] = true
			if len(seen) == len(want) {
				return nil
			}
		}
		return fmt.Errorf("only %v answered so far", keys(seen))
	})
}
