package e2e

// Mirrors of upstream sig-network Service e2e tests about Service types: changes of type on a
// live Service, NodePorts released on delete, TCP and UDP on one port of a LoadBalancer, and
// internalTrafficPolicy=Local from the node itself (a hostNetwork pod's view).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Upstream: "(C) should be able to change the type from ExternalName to ClusterIP", "... to
// NodePort", "... from ClusterIP / NodePort to ExternalName" and "should release NodePorts on
// delete".
func TestUpstreamTypeChangesAndNodePortRelease(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("types", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeExternalName
		s.Spec.ExternalName = "foo.example.com"
	})
	pods := f.CreatePods("types", 2)
	client := f.CreatePod("client", "client")
	if svc.Spec.ClusterIP != "" {
		t.Fatalf("ExternalName Service got ClusterIP %s", svc.Spec.ClusterIP)
	}

	// ExternalName -> ClusterIP: the new ClusterIP serves.
	svc = f.updateService(svc, func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeClusterIP, ""
	})
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(pods...)
	// ClusterIP -> NodePort: the NodePort serves the outside too.
	svc = f.updateService(svc, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	nodePort := portNamed(svc, "http").NodePort
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(pods...)
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(pods...)

	// NodePort -> ExternalName: the virtual servers go and the NodePort stops answering.
	old := svc
	svc = f.updateService(svc, func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "foo.example.com"
	})
	if svc.Spec.ClusterIP != "" {
		t.Fatalf("ExternalName Service kept ClusterIP %s", svc.Spec.ClusterIP)
	}
	for _, vs := range []string{echoAddr(old, "http"), f.nodePortAddr(old, "http")} {
		f.Eventually("virtual server "+vs+" goes", func(ctx context.Context) error {
			has, err := ipvsHas(ctx, vs)
			if err != nil {
				return err
			}
			if has {
				return errors.New("still there")
			}
			return nil
		})
	}
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(old, "/hostname")).Fails()

	// The NodePort was released: another Service may ask for it, and it serves there.
	reuse := f.CreateService("reuse", func(s *corev1.Service) {
		s.Spec.Selector = map[string]string{"app": "types"}
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports = servicePortsNamed("http")
		s.Spec.Ports[0].NodePort = nodePort
	})
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(reuse, "/hostname")).Hostname(pods...)
}

// lbSamePortIngressIP is the LoadBalancer ingress IP of TestUpstreamSamePortLoadBalancer
// (TEST-NET-2, routed from the outside host to the node).
const lbSamePortIngressIP = "198.51.100.21"

// Upstream: "should serve endpoints on same port and different protocol for internal traffic
// on Type LoadBalancer".
func TestUpstreamSamePortLoadBalancer(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("lbproto", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.Ports = servicePortsNamed("tcp-echo", "udp-echo")
	})
	pods := f.CreatePods("lbproto", 2)
	client := f.CreatePod("client", "client")
	// No cloud controller runs: publish the ingress IP the way one would.
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbSamePortIngressIP}}
	if _, err := f.Client.CoreV1().Services(f.Namespace).UpdateStatus(f.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("set load balancer ingress of %s: %v", svc.Name, err)
	}
	for _, proto := range []struct{ network, port string }{{"tcp", "tcp-echo"}, {"udp", "udp-echo"}} {
		f.expectEchoHostnames(f.FromPod(client), proto.network, echoAddr(svc, proto.port), pods...)
		ingress := net.JoinHostPort(lbSamePortIngressIP, fmt.Sprint(portNamed(svc, proto.port).Port))
		f.expectEchoHostnames(f.FromOutside(), proto.network, ingress, pods...)
	}
}

// Upstream: "should respect internalTrafficPolicy=Local Pod (hostNetwork: true) to Pod". As in
// TestInternalTrafficPolicyLocal, a hand-written EndpointSlice adds an endpoint on another
// node whose address holds no pod; here the client is the node itself.
func TestUpstreamInternalTrafficPolicyLocalFromNode(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	local := f.CreatePod("local", "itp")
	const remoteIP = "10.244.0.251"
	svc := f.CreateService("itp", func(s *corev1.Service) {
		s.Spec.Selector = nil
		s.Spec.Ports = servicePortsNamed("http")
		s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	})
	f.createLocalAndRemoteSlice(svc, local, remoteIP)
	f.expectRealServers("TCP", echoAddr(svc, "http"), realServer(local)...)
	f.ExpectHTTP(f.FromNode(), ServiceURL(svc, "/hostname")).Hostname(local)
	f.alwaysHostname(f.FromNode(), ServiceURL(svc, "/hostname"), local.Name, 12)
}
