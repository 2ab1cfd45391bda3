package e2e

// Issue 3's scenarios (the proxier core), after the upstream sig-network Service e2e tests:
// each asserts what a client sees through the Service.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/test/podsim"
)

// echoAddr is CLUSTER-IP:PORT of the Service's port named name.
func echoAddr(svc *corev1.Service, name string) string {
	return net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(portNamed(svc, name).Port))
}

// expectEchoHostnames waits until every one of pods has answered "hostname" over network
// through addr, and no other pod did.
func (f *Framework) expectEchoHostnames(src Source, network, addr string, pods ...*podsim.Pod) {
	f.t.Helper()
	want := map[string]bool{}
	for _, p := range pods {
		want[p.Name] = true
	}
	seen := map[string]bool{}
	f.Eventually(fmt.Sprintf("%s %s from %s reaches each of %v", network, addr, src.Name, keys(want)), func(ctx context.Context) error {
		for range 4 * len(want) {
			got, err := Echo(ctx, src, network, addr, "hostname")
			if err != nil {
				return err
			}
			if !want[got] {
				clear(seen)
				return fmt.Errorf("answered by %q", got)
			}
			seen[got] = true
			if len(seen) == len(want) {
				return nil
			}
		}
		return fmt.Errorf("only %v answered so far", keys(seen))
	})
}

// ipvsHas reports whether ipvsadm lists a virtual server on addr (IP:PORT).
func ipvsHas(ctx context.Context, addr string) (bool, error) {
	out, err := exec.CommandContext(ctx, "ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("ipvsadm -Ln: %w: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && (fields[0] == "TCP" || fields[0] == "UDP" || fields[0] == "SCTP") && fields[1] == addr {
			return true, nil
		}
	}
	return false, nil
}

func TestClusterIPOverUDP(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("udp")
	pods := f.CreatePods("udp", 2)
	client := f.CreatePod("client", "client")

	f.expectEchoHostnames(f.FromPod(client), "udp", echoAddr(svc, "udp-echo"), pods...)
	f.expectEchoHostnames(f.FromNode(), "udp", echoAddr(svc, "udp-echo"), pods...)
	// The payload comes back unchanged.
	f.Eventually("udp echo returns the payload", func(ctx context.Context) error {
		got, err := Echo(ctx, f.FromPod(client), "udp", echoAddr(svc, "udp-echo"), "ping-over-udp")
		if err != nil {
			return err
		}
		if got != "ping-over-udp" {
			return fmt.Errorf("got %q", got)
		}
		return nil
	})
}

func TestMultiportService(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("multi")
	pods := f.CreatePods("multi", 2)
	client := f.CreatePod("client", "client")

	// Each of the three ports (HTTP, TCP echo, UDP echo on the same port number) reaches
	// every backend on its own target port.
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(pods...)
	f.expectEchoHostnames(f.FromPod(client), "tcp", echoAddr(svc, "tcp-echo"), pods...)
	f.expectEchoHostnames(f.FromPod(client), "udp", echoAddr(svc, "udp-echo"), pods...)
}

// getReset is Get whose client ends each connection with a reset (SO_LINGER 0): IPVS then
// forgets the connection after its CLOSE timeout (10 s) instead of holding it in TIME_WAIT
// for 2 minutes, and with it the affinity template the connection keeps alive.
func getReset(ctx context.Context, src Source, url string) (string, error) {
	reset := Source{Name: src.Name, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := src.Dial(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return c, err
	}}
	return Get(ctx, reset, url)
}

// Upstream: "should have session affinity work for service with type clusterIP" and "should
// have session affinity timeout work for service with type clusterIP". The timeout is IPVS's
// persistence timeout, and the affinity ends when the kernel drops the client's template: see
// affinity_conns.go for the kernel's rule and why timeoutSeconds is 20 here.
func TestSessionAffinityClientIP(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	timeout := int32(20)
	svc := f.CreateService("sticky", func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}}
	})
	pods := f.CreatePods("sticky", 3)
	client := f.CreatePod("client", "client")
	httpPort := portNamed(svc, "http").Port
	clientIP, ok := netip.AddrFromSlice(client.IP.To4())
	if !ok {
		t.Fatalf("client pod has no IPv4 address: %v", client.IP)
	}
	f.expectAffinityTimeout(affinityScenario{
		src:     f.FromPod(client),
		client:  clientIP,
		virtual: netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), uint16(httpPort)),
		url:     ServiceURL(svc, "/hostname"),
		pods:    pods,
		timeout: timeout,
	})

	// The timeout is programmed: the virtual server is persistent for timeoutSeconds.
	vs := fmt.Sprintf("%s:%d", svc.Spec.ClusterIP, httpPort)
	out, err := exec.CommandContext(f.Context(), "ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -Ln: %v: %s", err, out)
	}
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 5 && fields[0] == "TCP" && fields[1] == vs {
			found = fields[3] == "persistent" && fields[4] == fmt.Sprint(timeout)
			if !found {
				t.Fatalf("virtual server %s is not persistent %d: %q", vs, timeout, line)
			}
		}
	}
	if !found {
		t.Fatalf("no virtual server %s in:\n%s", vs, out)
	}
}

func TestScaleEndpointsUpAndDown(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("scale")
	client := f.CreatePod("client", "client")
	url := ServiceURL(svc, "/hostname")

	first := f.CreatePod("scale-0", "scale")
	f.ExpectHTTP(f.FromPod(client), url).Hostname(first)

	// Scale up: new pods answer.
	more := []*podsim.Pod{first, f.CreatePod("scale-1", "scale"), f.CreatePod("scale-2", "scale")}
	f.ExpectHTTP(f.FromPod(client), url).Hostname(more...)

	// Scale down: deleted pods stop answering, and once withdrawn no request fails.
	for _, p := range more[1:] {
		if err := p.Delete(f.Context()); err != nil {
			t.Fatal(err)
		}
	}
	f.ExpectHTTP(f.FromPod(client), url).Hostname(first)
	for i := range 20 {
		got, err := Get(f.Context(), f.FromPod(client), url)
		if err != nil {
			t.Fatalf("request %d after scale-down: %v", i, err)
		}
		if got != first.Name {
			t.Fatalf("request %d after scale-down answered by %s", i, got)
		}
	}
}

func TestServiceDeletedAndRecreated(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("again")
	pods := f.CreatePods("again", 2)
	client := f.CreatePod("client", "client")
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(pods...)

	if err := f.Client.CoreV1().Services(f.Namespace).Delete(f.Context(), svc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Eventually("the deleted Service's virtual server goes", func(ctx context.Context) error {
		has, err := ipvsHas(ctx, echoAddr(svc, "http"))
		if err != nil {
			return err
		}
		if has {
			return errors.New("still there")
		}
		return nil
	})
	// Same name again; it may get another ClusterIP.
	again := f.CreateService("again")
	f.ExpectHTTP(f.FromPod(client), ServiceURL(again, "/hostname")).Hostname(pods...)
}

func TestServiceWithoutEndpointsRejects(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("nobody")
	client := f.CreatePod("client", "client")
	addr := echoAddr(svc, "tcp-echo")

	// Connection refused, quickly: not a hang until the client's timeout.
	f.Eventually("tcp "+addr+" without endpoints is refused within 2s", func(ctx context.Context) error {
		start := time.Now()
		_, err := Echo(ctx, f.FromPod(client), "tcp", addr, "hostname")
		took := time.Since(start)
		switch {
		case err == nil:
			return errors.New("answered")
		case !errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Errorf("failed with %v after %s, not refused", err, took.Round(time.Millisecond))
		case took > 2*time.Second:
			return fmt.Errorf("refused only after %s", took.Round(time.Millisecond))
		}
		return nil
	})
}

func TestHeadlessAndOtherProxiesServicesIgnored(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	headless := f.CreateService("headless", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })
	other := f.CreateService("other", func(s *corev1.Service) {
		s.Labels = map[string]string{"service.kubernetes.io/service-proxy-name": "someone-else"}
	})
	mine := f.CreateService("mine")
	f.CreatePods("headless", 1)
	f.CreatePods("other", 1)
	minePods := f.CreatePods("mine", 1)

	// Once the proxier serves a Service created after them, it has seen them all.
	f.ExpectHTTP(f.FromNode(), ServiceURL(mine, "/hostname")).Hostname(minePods...)
	if headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("headless Service got ClusterIP %s", headless.Spec.ClusterIP)
	}
	has, err := ipvsHas(f.Context(), echoAddr(other, "http"))
	if err != nil {
		t.Fatal(err)
	}
	if has {
		path, ipvs := f.dumpNodeState()
		t.Fatalf("virtual server for %s, which names another proxy; node state in %s; IPVS:\n%s", echoAddr(other, "http"), path, ipvs)
	}
	if _, err := Get(f.Context(), f.FromNode(), ServiceURL(other, "/hostname")); err == nil {
		t.Fatalf("%s answered though another proxy owns it", ServiceURL(other, "/hostname"))
	}
}

func TestConnectionSurvivesProxierRestart(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("steady")
	pods := f.CreatePods("steady", 2)
	client := f.CreatePod("client", "client")
	addr := echoAddr(svc, "tcp-echo")
	f.expectEchoHostnames(f.FromPod(client), "tcp", addr, pods...)

	// One TCP connection through the ClusterIP, open across the restart.
	conn, err := client.DialContext(f.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	echo := func(line string) {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(perTry))
		if _, err := fmt.Fprintln(conn, line); err != nil {
			t.Fatalf("send %q on the open connection: %v", line, err)
		}
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read %q back on the open connection: %v", line, err)
		}
		if got != line+"\n" {
			t.Fatalf("open connection echoed %q, want %q", got, line)
		}
	}
	echo("before")

	vs := func(when string) {
		t.Helper()
		has, err := ipvsHas(f.Context(), addr)
		if err != nil {
			t.Fatal(err)
		}
		if !has {
			path, ipvs := f.dumpNodeState()
			t.Fatalf("no virtual server for %s %s; node state in %s; IPVS:\n%s", addr, when, path, ipvs)
		}
	}
	vs("before the restart")
	f.killProxier()
	vs("with the proxier down")
	echo("proxier down")
	f.startProxier()
	vs("after the restart")
	echo("after restart")
	// New connections keep reaching every backend too.
	f.expectEchoHostnames(f.FromPod(client), "tcp", addr, pods...)
	vs("at the end")
	echo("at the end")
}
