package e2e

// Mirrors of upstream sig-network Service e2e tests (test/e2e/network/service.go) that the
// other scenarios did not cover: source pod IP through a ClusterIP, ports added and removed on
// a live Service, the same port over TCP and UDP after a type change to NodePort, and a
// restart of the API server. Session affinity mirrors live in upstream_affinity_test.go,
// endpoint-state mirrors (unready, terminating, UDP conntrack) in upstream_endpoints_test.go.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// updateService changes the live Service svc (read again, mutated, written; retried on a
// conflict) and returns it as the API server stored it.
func (f *Framework) updateService(svc *corev1.Service, mutate func(*corev1.Service)) *corev1.Service {
	f.t.Helper()
	services := f.Client.CoreV1().Services(svc.Namespace)
	var out *corev1.Service
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := services.Get(f.ctx, svc.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(cur)
		out, err = services.Update(f.ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		f.t.Fatalf("update service %s: %v", svc.Name, err)
	}
	return out
}

// servicePortsNamed returns ServicePorts' ports with these names, in ServicePorts' order.
func servicePortsNamed(names ...string) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, p := range ServicePorts() {
		for _, n := range names {
			if p.Name == n {
				out = append(out, p)
			}
		}
	}
	return out
}

// expectRefused waits until a TCP connection from src to addr is refused (ECONNREFUSED: a
// reset or an ICMP port unreachable), the answer for a port the Service does not have.
func (f *Framework) expectRefused(src Source, addr string) {
	f.t.Helper()
	f.Eventually(fmt.Sprintf("tcp %s from %s is refused", addr, src.Name), func(ctx context.Context) error {
		got, err := Echo(ctx, src, "tcp", addr, "hostname")
		switch {
		case err == nil:
			return fmt.Errorf("answered by %q", got)
		case !errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Errorf("not refused but failed otherwise: %w", err)
		}
		return nil
	})
}

// expectNoUDPAnswer waits until a datagram from src to addr gets no answer (the read times out
// or an ICMP error comes back).
func (f *Framework) expectNoUDPAnswer(src Source, addr string) {
	f.t.Helper()
	f.Eventually(fmt.Sprintf("udp %s from %s gets no answer", addr, src.Name), func(ctx context.Context) error {
		got, err := Echo(ctx, src, "udp", addr, "hostname")
		if err == nil {
			return fmt.Errorf("answered by %q", got)
		}
		return nil
	})
}

// Upstream: "should preserve source pod IP for traffic thru service cluster IP [LinuxOnly]".
func TestUpstreamSourcePodIPThroughClusterIP(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("source")
	server := f.CreatePod("source-0", "source")
	clients := []string{"client-0", "client-1"}
	f.ExpectHTTP(f.FromNode(), ServiceURL(svc, "/hostname")).Hostname(server)

	// Each client pod's own address is what the server sees, over HTTP, TCP and UDP: traffic
	// between pods through a ClusterIP is not masqueraded.
	for _, name := range clients {
		client := f.CreatePod(name, "client")
		src, want := f.FromPod(client), client.IP.String()
		f.ExpectHTTP(src, ServiceURL(svc, "/hostname")).Hostname(server)
		for i := range 5 {
			got, err := Get(f.ctx, src, ServiceURL(svc, "/clientip"))
			if err != nil {
				t.Fatalf("request %d from %s: %v", i+1, src.Name, err)
			}
			if got != want {
				t.Fatalf("request %d from %s: server saw client IP %s, want the pod's %s", i+1, src.Name, got, want)
			}
		}
		f.expectEcho(src, "tcp", echoAddr(svc, "tcp-echo"), "clientip", want)
		f.expectEcho(src, "udp", echoAddr(svc, "udp-echo"), "clientip", want)
	}
}

// Upstream: "should be updated after adding or deleting ports".
func TestUpstreamServicePortsAddedAndDeleted(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("ports", func(s *corev1.Service) { s.Spec.Ports = servicePortsNamed("http") })
	pods := f.CreatePods("ports", 2)
	client := f.CreatePod("client", "client")
	src := f.FromPod(client)
	url := ServiceURL(svc, "/hostname")
	echo := net.JoinHostPort(svc.Spec.ClusterIP, "9000")

	f.ExpectHTTP(src, url).Hostname(pods...)
	f.expectRefused(src, echo)

	// Added: TCP and UDP 9000 answer from every backend.
	svc = f.updateService(svc, func(s *corev1.Service) { s.Spec.Ports = ServicePorts() })
	f.expectEchoHostnames(src, "tcp", echo, pods...)
	f.expectEchoHostnames(src, "udp", echo, pods...)

	// TCP 9000 deleted: refused, while UDP 9000 and HTTP keep answering.
	svc = f.updateService(svc, func(s *corev1.Service) { s.Spec.Ports = servicePortsNamed("http", "udp-echo") })
	f.expectRefused(src, echo)
	f.expectEchoHostnames(src, "udp", echo, pods...)
	f.ExpectHTTP(src, url).Hostname(pods...)

	// UDP 9000 deleted too: no answer; HTTP still answers.
	f.updateService(svc, func(s *corev1.Service) { s.Spec.Ports = servicePortsNamed("http") })
	f.expectNoUDPAnswer(src, echo)
	f.ExpectHTTP(src, url).Hostname(pods...)
}

// Upstream: "should be able to update service type to NodePort listening on same port number
// but different protocols" and "(C) should serve endpoints on same port and different
// protocols".
func TestUpstreamSamePortDifferentProtocols(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("proto", func(s *corev1.Service) { s.Spec.Ports = servicePortsNamed("tcp-echo") })
	pods := f.CreatePods("proto", 2)
	client := f.CreatePod("client", "client")
	f.expectEchoHostnames(f.FromPod(client), "tcp", echoAddr(svc, "tcp-echo"), pods...)

	svc = f.updateService(svc, func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports = servicePortsNamed("tcp-echo", "udp-echo")
	})
	tcpPort, udpPort := portNamed(svc, "tcp-echo"), portNamed(svc, "udp-echo")
	if tcpPort.NodePort == 0 || udpPort.NodePort == 0 {
		t.Fatalf("NodePorts not allocated: %+v", svc.Spec.Ports)
	}
	// Both protocols on port 9000 of the ClusterIP, and on each one's NodePort from outside.
	for _, proto := range []struct{ network, port string }{{"tcp", "tcp-echo"}, {"udp", "udp-echo"}} {
		f.expectEchoHostnames(f.FromPod(client), proto.network, echoAddr(svc, proto.port), pods...)
		f.expectEchoHostnames(f.FromOutside(), proto.network, f.nodePortAddr(svc, proto.port), pods...)
	}
}

// Upstream: "should work after restarting apiserver [Disruptive]". Last in the suite's order
// of upstream mirrors: a bed that cannot bring its API server back fails what follows.
func TestUpstreamWorksAfterAPIServerRestart(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	before := f.CreateService("before")
	beforePods := f.CreatePods("before", 2)
	client := f.CreatePod("client", "client")
	f.ExpectHTTP(f.FromPod(client), ServiceURL(before, "/hostname")).Hostname(beforePods...)

	// Requests keep going while the API server is away: the data path never needs it.
	restarted, done := make(chan struct{}), make(chan struct{})
	var during []string
	go func() {
		defer close(done)
		for {
			got, err := Get(f.ctx, f.FromPod(client), ServiceURL(before, "/hostname"))
			if err != nil {
				got = err.Error()
			}
			during = append(during, got)
			select {
			case <-restarted:
				return
			case <-time.After(500 * time.Millisecond): // request pacing, not a wait
			}
		}
	}()
	start := time.Now()
	err := f.Bed.RestartAPIServer(f.ctx)
	close(restarted)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver restarted and ready in %s; %d requests meanwhile", time.Since(start).Round(100*time.Millisecond), len(during))
	for i, got := range during {
		if got != beforePods[0].Name && got != beforePods[1].Name {
			t.Fatalf("request %d of %d during the restart: %s", i+1, len(during), got)
		}
	}
	// The programmed Service kept working, and the proxier sees what changes after the
	// restart: a new Service, and a backend leaving the old one.
	f.ExpectHTTP(f.FromPod(client), ServiceURL(before, "/hostname")).Hostname(beforePods...)
	after := f.CreateService("after")
	afterPods := f.CreatePods("after", 1)
	f.ExpectHTTP(f.FromPod(client), ServiceURL(after, "/hostname")).Hostname(afterPods...)
	if err := beforePods[1].SetReady(f.ctx, false); err != nil {
		t.Fatal(err)
	}
	f.expectRealServers("TCP", echoAddr(before, "http"), realServer(beforePods[0])...)
	f.alwaysHostname(f.FromPod(client), ServiceURL(before, "/hostname"), beforePods[0].Name, 8)
}
