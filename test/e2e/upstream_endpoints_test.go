package e2e

// Endpoint-state mirrors of upstream sig-network e2e tests: unready and terminating endpoints
// under publishNotReadyAddresses, a UDP flow that must follow its Service to a new pod
// (conntrack.go), and the healthCheckNodePort of a Service whose only local endpoint is
// terminating.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/test/podsim"
)

// expectEndpoints waits until the EndpointSlices of svc publish exactly want.
func (f *Framework) expectEndpoints(svc *corev1.Service, want ...Endpoint) {
	f.t.Helper()
	sortEndpoints(want)
	f.Eventually(fmt.Sprintf("the endpoints of %s are %+v", svc.Name, want), func(context.Context) error {
		got, err := f.Endpoints(svc)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("endpoints (-want +got):\n%s", diff)
		}
		return nil
	})
}

// Upstream: "should create endpoints for unready pods", "should be able to connect to
// terminating and unready endpoints if PublishNotReadyAddresses is true" and "should not be
// able to connect to terminating and unready endpoints if PublishNotReadyAddresses is false".
// Two Services select the same pods, one ready and one never ready; they differ only in
// publishNotReadyAddresses.
func TestUpstreamPublishNotReadyAddresses(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	publish := f.CreateService("publish", func(s *corev1.Service) {
		s.Spec.Selector = map[string]string{"app": "pnr"}
		s.Spec.PublishNotReadyAddresses = true
	})
	hide := f.CreateService("hide", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "pnr"} })
	ready := f.CreatePod("pnr-ready", "pnr")
	unready := f.CreatePod("pnr-unready", "pnr", func(s *podsim.PodSpec) { s.NotReady = true })
	client := f.CreatePod("client", "client")
	src := f.FromPod(client)

	// Unready: published and served with true, neither with false.
	f.ExpectHTTP(src, ServiceURL(publish, "/hostname")).Hostname(ready, unready)
	f.ExpectHTTP(src, ServiceURL(hide, "/hostname")).Hostname(ready)
	f.alwaysHostname(src, ServiceURL(hide, "/hostname"), ready.Name, 12)

	// Terminating and unready: still served with true, still not with false.
	if err := unready.Terminate(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.expectEndpoints(hide,
		Endpoint{IP: ready.IP.String(), Ready: true, Serving: true},
		Endpoint{IP: unready.IP.String(), Terminating: true})
	f.expectEndpoints(publish,
		Endpoint{IP: ready.IP.String(), Ready: true, Serving: true},
		Endpoint{IP: unready.IP.String(), Ready: true, Terminating: true})
	f.proxierSynced()
	f.ExpectHTTP(src, ServiceURL(publish, "/hostname")).Hostname(ready, unready)
	f.alwaysHostname(src, ServiceURL(hide, "/hostname"), ready.Name, 12)
}

// udpFlow sends "hostname" every interval from one UDP socket (one source port, the whole
// test long) and remembers the last answer, as upstream's conntrack client pod does.
type udpFlow struct {
	name   string
	conn   net.Conn
	mu     sync.Mutex
	last   string
	lastAt time.Time
	sent   atomic.Int32
	wg     sync.WaitGroup
	stop   chan struct{}
}

// startUDPFlow opens the flow from src to addr; it stops when the test ends.
func (f *Framework) startUDPFlow(src Source, addr string, interval time.Duration) *udpFlow {
	f.t.Helper()
	conn, err := src.Dial(f.ctx, "udp", addr)
	if err != nil {
		f.t.Fatalf("open udp flow from %s to %s: %v", src.Name, addr, err)
	}
	u := &udpFlow{name: fmt.Sprintf("udp flow %s -> %s from %s", conn.LocalAddr(), addr, src.Name), conn: conn, stop: make(chan struct{})}
	u.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if _, err := conn.Write([]byte("hostname")); err == nil { // an ICMP error shows on a later read
				u.sent.Add(1)
			}
			select {
			case <-u.stop:
				return
			case <-tick.C:
			}
		}
	})
	u.wg.Go(func() {
		buf := make([]byte, 1024)
		for {
			n, err := conn.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				u.mu.Lock()
				u.last, u.lastAt = string(buf[:n]), time.Now()
				u.mu.Unlock()
			}
		}
	})
	f.t.Cleanup(func() {
		close(u.stop)
		_ = conn.Close()
		u.wg.Wait()
	})
	return u
}

// answer is the last answer and when it came.
func (u *udpFlow) answer() (string, time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.lastAt
}

// expectAnsweredBy waits until an answer newer than since comes from pod name, and returns
// how long after since it came.
func (f *Framework) expectAnsweredBy(u *udpFlow, name string, since time.Time) time.Duration {
	f.t.Helper()
	var after time.Duration
	f.Eventually(fmt.Sprintf("the %s is answered by %s", u.name, name), func(context.Context) error {
		got, at := u.answer()
		switch {
		case at.IsZero() || at.Before(since):
			return fmt.Errorf("no answer since %s (last %q at %s)", since.Format(time.TimeOnly), got, at.Format(time.TimeOnly))
		case got != name:
			return fmt.Errorf("answered by %q", got)
		}
		after = at.Sub(since)
		return nil
	})
	return after
}

// Upstream (conntrack.go): "should be able to preserve UDP traffic when server pod cycles for
// a ClusterIP service" and "... for a NodePort service". Each client flow keeps one source
// port while the only backend goes and another comes: IPVS's and conntrack's entries for the
// flow must not keep it pinned to the gone pod.
func TestUpstreamUDPFlowFollowsServerPodCycle(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("cycle", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports = servicePortsNamed("udp-echo")
	})
	first := f.CreatePod("cycle-0", "cycle")
	client := f.CreatePod("client", "client")
	f.expectEchoHostnames(f.FromPod(client), "udp", echoAddr(svc, "udp-echo"), first)

	flows := []*udpFlow{
		f.startUDPFlow(f.FromPod(client), echoAddr(svc, "udp-echo"), 250*time.Millisecond),
		f.startUDPFlow(f.FromOutside(), f.nodePortAddr(svc, "udp-echo"), 250*time.Millisecond),
	}
	for _, u := range flows {
		f.expectAnsweredBy(u, first.Name, time.Time{})
	}
	if err := first.Delete(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.expectEndpoints(svc)
	second := f.CreatePod("cycle-1", "cycle")
	ready := time.Now()
	for _, u := range flows {
		t.Logf("%s answered by the new pod %s after its creation returned", u.name, f.expectAnsweredBy(u, second.Name, ready).Round(time.Millisecond))
	}
}

// Upstream (conntrack.go): "should be able to preserve UDP traffic when initial unready
// endpoints get ready". The flow starts while the only pod is not ready (its datagrams get no
// answer), and must reach the pod once it is ready, from the same source port.
func TestUpstreamUDPFlowReachesEndpointThatGetsReady(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("late", func(s *corev1.Service) { s.Spec.Ports = servicePortsNamed("udp-echo") })
	pod := f.CreatePod("late-0", "late", func(s *podsim.PodSpec) { s.NotReady = true })
	client := f.CreatePod("client", "client")
	f.expectEndpoints(svc, Endpoint{IP: pod.IP.String()})
	f.expectRealServers("UDP", echoAddr(svc, "udp-echo"))

	flow := f.startUDPFlow(f.FromPod(client), echoAddr(svc, "udp-echo"), 250*time.Millisecond)
	// The flow is under way (its first datagrams went unanswered) before the pod gets ready.
	f.Eventually("the flow has sent 4 datagrams", func(context.Context) error {
		if n := flow.sent.Load(); n < 4 {
			return fmt.Errorf("sent %d", n)
		}
		return nil
	})
	if got, at := flow.answer(); !at.IsZero() {
		t.Fatalf("%s answered by %q while no endpoint was ready", flow.name, got)
	}
	if err := pod.SetReady(f.ctx, true); err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	t.Logf("%s answered by %s after it was set ready", flow.name, f.expectAnsweredBy(flow, pod.Name, ready).Round(time.Millisecond))
}

// Upstream: "should fail health check node port if there are only terminating endpoints",
// and (its fallback half) "should fallback to local terminating endpoints when there are no
// ready endpoints with externalTrafficPolicy=Local".
func TestUpstreamHealthCheckNodePortOnlyTerminating(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("hc", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	})
	pod := f.CreatePod("hc-0", "hc")
	if svc.Spec.HealthCheckNodePort == 0 {
		t.Fatalf("the API server allocated no healthCheckNodePort to %s", svc.Name)
	}
	health := fmt.Sprintf("http://%s/healthz", net.JoinHostPort(f.Bed.NodeIP().String(), fmt.Sprint(svc.Spec.HealthCheckNodePort)))
	url := f.NodePortURL(svc, "/hostname")
	f.ExpectHTTP(f.FromOutside(), url).Hostname(pod)
	f.expectHealth(f.FromOutside(), health, healthAnswer{Code: http.StatusOK, LocalEndpoints: 1})

	// Graceful delete: the pod keeps running and its endpoint turns terminating (serving,
	// not ready). The health check fails, so a load balancer moves away from the node...
	if err := pod.Terminate(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.expectEndpoints(svc, Endpoint{IP: pod.IP.String(), Serving: true, Terminating: true})
	f.expectHealth(f.FromOutside(), health, healthAnswer{Code: http.StatusServiceUnavailable, LocalEndpoints: 0})
	// ...while connections that still come are served by the terminating pod.
	f.proxierSynced()
	f.ExpectHTTP(f.FromOutside(), url).Hostname(pod)
	f.alwaysHostname(f.FromOutside(), url, pod.Name, 5)
}
