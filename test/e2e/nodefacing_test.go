package e2e

// Issue 5's scenarios (node-facing Services): NodePort, externalTrafficPolicy=Local and its
// healthCheckNodePort, LoadBalancer with source ranges, externalIPs, internalTrafficPolicy.
// Each asserts what a client sees, over IPv4 (node 192.168.77.1/24, pods 10.244.0.0/24); the
// bed is dual-stack, and the IPv6 scenarios live in dualstack_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Addresses the outside host reaches through its default route to the node (TEST-NET-2),
// used as a LoadBalancer ingress IP and an externalIP.
const (
	lbIngressIP = "198.51.100.20"
	externalIP  = "198.51.100.10"
	// secondOutsideAddr is a second address of the outside host, in the bed's outside subnet.
	secondOutsideAddr = "192.168.77.3/24"
)

// nodePortAddr is NODE-IP:NODEPORT of the Service's port named name.
func (f *Framework) nodePortAddr(svc *corev1.Service, name string) string {
	return net.JoinHostPort(f.Bed.NodeIP().String(), fmt.Sprint(portNamed(svc, name).NodePort))
}

// httpURL is http://IP:PORT/PATH for the Service's port named "http".
func httpURL(svc *corev1.Service, ip, path string) string {
	return "http://" + net.JoinHostPort(ip, fmt.Sprint(portNamed(svc, "http").Port)) + path
}

// addOutsideAddr gives the outside host a second address (CIDR form) for the test's length
// and returns a Source that connects from it.
func (f *Framework) addOutsideAddr(cidr string) Source {
	f.t.Helper()
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		f.t.Fatalf("parse %s: %v", cidr, err)
	}
	addr.Flags = 0x80 // IFA_F_NODAD: usable at once
	change := func(add bool) error {
		return f.Bed.Outside.Do(func(ns.NetNS) error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return fmt.Errorf("find outside eth0: %w", err)
			}
			if add {
				return netlink.AddrAdd(l, addr)
			}
			return netlink.AddrDel(l, addr)
		})
	}
	if err := change(true); err != nil {
		f.t.Fatalf("add %s to the outside host: %v", cidr, err)
	}
	f.t.Cleanup(func() {
		if err := change(false); err != nil {
			f.t.Errorf("remove %s from the outside host: %v", cidr, err)
		}
	})
	local := &net.TCPAddr{IP: addr.IP}
	return Source{Name: "outside host at " + addr.IP.String(), Dial: func(ctx context.Context, network, target string) (net.Conn, error) {
		var conn net.Conn
		err := f.Bed.Outside.Do(func(ns.NetNS) error {
			d := net.Dialer{LocalAddr: local}
			var err error
			conn, err = d.DialContext(ctx, network, target)
			return err
		})
		return conn, err
	}}
}

// expectEcho waits until an echo of line over network to addr from src answers want.
func (f *Framework) expectEcho(src Source, network, addr, line, want string) {
	f.t.Helper()
	f.Eventually(fmt.Sprintf("%s %s from %s answers %q to %q", network, addr, src.Name, want, line), func(ctx context.Context) error {
		got, err := Echo(ctx, src, network, addr, line)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("got %q", got)
		}
		return nil
	})
}

// healthAnswer is what a healthCheckNodePort answers.
type healthAnswer struct {
	Code           int
	LocalEndpoints int
}

func getHealth(ctx context.Context, src Source, url string) (healthAnswer, error) {
	c := &http.Client{Timeout: perTry, Transport: &http.Transport{DialContext: src.Dial, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return healthAnswer{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return healthAnswer{}, fmt.Errorf("GET %s from %s: %w", url, src.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return healthAnswer{}, fmt.Errorf("GET %s from %s: read body: %w", url, src.Name, err)
	}
	var v struct {
		LocalEndpoints int `json:"localEndpoints"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return healthAnswer{}, fmt.Errorf("GET %s from %s: %s: decode %q: %w", url, src.Name, resp.Status, body, err)
	}
	return healthAnswer{Code: resp.StatusCode, LocalEndpoints: v.LocalEndpoints}, nil
}

// expectHealth waits until the healthCheckNodePort at url answers want.
func (f *Framework) expectHealth(src Source, url string, want healthAnswer) {
	f.t.Helper()
	f.Eventually(fmt.Sprintf("GET %s from %s answers %+v", url, src.Name, want), func(ctx context.Context) error {
		got, err := getHealth(ctx, src, url)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("got %+v", got)
		}
		return nil
	})
}

// alwaysHostname sends n requests from src to url and fails the test unless every one is
// answered by pod name want: the check after convergence that nothing else takes traffic.
func (f *Framework) alwaysHostname(src Source, url, want string, n int) {
	f.t.Helper()
	for i := range n {
		got, err := Get(f.ctx, src, url)
		if err != nil {
			f.t.Fatalf("request %d of %d: %v", i+1, n, err)
		}
		if got != want {
			f.t.Fatalf("request %d of %d: GET %s from %s answered by %q, want only %q", i+1, n, url, src.Name, got, want)
		}
	}
}

// expectDropped waits until a TCP connection from src to addr is dropped: the connect times
// out (no answer at all), as a firewall drop does, rather than being refused.
func (f *Framework) expectDropped(src Source, addr string) {
	f.t.Helper()
	f.Eventually(fmt.Sprintf("tcp %s from %s is dropped", addr, src.Name), func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := src.Dial(ctx, "tcp", addr)
		switch {
		case err == nil:
			conn.Close()
			return fmt.Errorf("connected")
		case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
			return nil
		default:
			return fmt.Errorf("not dropped but failed otherwise: %w", err)
		}
	})
}

func TestNodePortOverTCPAndUDP(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("np", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	pods := f.CreatePods("np", 2)

	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(pods...)
	f.expectEchoHostnames(f.FromOutside(), "tcp", f.nodePortAddr(svc, "tcp-echo"), pods...)
	f.expectEchoHostnames(f.FromOutside(), "udp", f.nodePortAddr(svc, "udp-echo"), pods...)
	f.expectEcho(f.FromOutside(), "udp", f.nodePortAddr(svc, "udp-echo"), "ping-over-udp", "ping-over-udp")

	// From the node: its own address serves the NodePort, 127.0.0.1 does not (as kube-proxy
	// since CVE-2020-8558: a NodePort on loopback is reachable by anything on the node).
	f.ExpectHTTP(f.FromNode(), f.NodePortURL(svc, "/hostname")).Hostname(pods...)
	loopback := "http://" + net.JoinHostPort("127.0.0.1", fmt.Sprint(portNamed(svc, "http").NodePort)) + "/hostname"
	f.ExpectHTTP(f.FromNode(), loopback).Fails()
}

func TestExternalTrafficPolicyLocal(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	// The API server allocates a healthCheckNodePort to LoadBalancer Services only; no
	// ingress IP is needed for the NodePort and the health check.
	svc := f.CreateService("etp", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	})
	pods := f.CreatePods("etp", 2)
	if svc.Spec.HealthCheckNodePort == 0 {
		t.Fatalf("the API server allocated no healthCheckNodePort to %s ", svc.Name)
	}

	// The server sees the outside client's own address: no masquerade under Local.
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(pods...)
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/clientip")).Body(f.Bed.OutsideIP().String())

	// The healthCheckNodePort counts the node's ready endpoints: 200 with two, 503 with none.
	health := fmt.Sprintf("http://%s/healthz", net.JoinHostPort(f.Bed.NodeIP().String(), fmt.Sprint(svc.Spec.HealthCheckNodePort)))
	f.expectHealth(f.FromOutside(), health, healthAnswer{Code: http.StatusOK, LocalEndpoints: 2})
	if err := pods[0].SetReady(f.Context(), false); err != nil {
		t.Fatal(err)
	}
	f.expectHealth(f.FromOutside(), health, healthAnswer{Code: http.StatusOK, LocalEndpoints: 1})
	if err := pods[1].SetReady(f.Context(), false); err != nil {
		t.Fatal(err)
	}
	f.expectHealth(f.FromOutside(), health, healthAnswer{Code: http.StatusServiceUnavailable, LocalEndpoints: 0})
}

func TestLoadBalancerSourceRanges(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	second := f.addOutsideAddr(secondOutsideAddr)
	outside := f.FromOutside()
	svc := f.CreateService("lb", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.LoadBalancerSourceRanges = []string{f.Bed.OutsideIP().String() + "/32"}
	})
	pods := f.CreatePods("lb", 2)
	// No cloud controller runs: publish the ingress IP the way one would.
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIngressIP}}
	svc, err := f.Client.CoreV1().Services(f.Namespace).UpdateStatus(f.ctx, svc, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("set load balancer ingress of %s: %v", svc.Name, err)
	}
	url := httpURL(svc, lbIngressIP, "/hostname")
	lbAddr := net.JoinHostPort(lbIngressIP, fmt.Sprint(portNamed(svc, "http").Port))

	// The allowed client gets in; the other address of the same host does not.
	f.ExpectHTTP(outside, url).Hostname(pods...)
	f.expectDropped(second, lbAddr)

	// Swap the range: now the second address is allowed and the first one dropped.
	svc.Spec.LoadBalancerSourceRanges = []string{strings.Split(secondOutsideAddr, "/")[0] + "/32"}
	if _, err := f.Client.CoreV1().Services(f.Namespace).Update(f.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update source ranges of %s: %v", svc.Name, err)
	}
	f.ExpectHTTP(second, url).Hostname(pods...)
	f.expectDropped(outside, lbAddr)
}

func TestExternalIP(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("extip", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{externalIP} })
	pods := f.CreatePods("extip", 2)

	f.ExpectHTTP(f.FromOutside(), httpURL(svc, externalIP, "/hostname")).Hostname(pods...)
	f.expectEchoHostnames(f.FromOutside(), "udp", net.JoinHostPort(externalIP, fmt.Sprint(portNamed(svc, "udp-echo").Port)), pods...)
}

func TestInternalTrafficPolicyLocal(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	local := f.CreatePod("local", "itp")
	client := f.CreatePod("client", "client")
	// A selector-less Service whose EndpointSlice is written by hand: one endpoint on this
	// node, one on another node. The remote address holds no pod, so a request sent to it
	// would fail: every request answering proves it is not a real server.
	const remoteIP = "10.244.0.250"
	svc := f.CreateService("itp", func(s *corev1.Service) {
		s.Spec.Selector = nil
		s.Spec.Ports = s.Spec.Ports[:1]
		s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	})
	f.createLocalAndRemoteSlice(svc, local, remoteIP)
	url := ServiceURL(svc, "/hostname")

	f.ExpectHTTP(f.FromPod(client), url).Hostname(local)
	f.alwaysHostname(f.FromPod(client), url, local.Name, 12)
	has, err := ipvsHasRealServer(f.ctx, net.JoinHostPort(remoteIP, fmt.Sprint(local.HTTPPort())))
	if err != nil {
		t.Fatal(err)
	}
	if has {
		t.Errorf("IPVS lists the other node's endpoint %s as a real server", remoteIP)
	}
}
