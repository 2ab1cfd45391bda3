package daemon

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/reconcile"
)

func TestSkipReasonOfComputeErrors(t *testing.T) {
	svc := service("web", "10.96.0.10", 80)
	svc.Annotations = map[string]string{desired.SchedulerAnnotation: "random"}
	svc.Spec.Ports = append(svc.Spec.Ports, v1.ServicePort{Name: "x", Protocol: "ICMP", Port: 1})
	v6 := service("v6", "fd00::10", 80)
	bad := slice("web", "", "not-an-ip")
	ext := service("ext", "10.96.0.11", 80)
	ext.Spec.ExternalIPs = []string{"198.51.100.7"}
	var got []string
	for _, c := range []struct {
		svc *v1.Service
		eps []*discoveryv1.EndpointSlice
	}{{svc, []*discoveryv1.EndpointSlice{bad}}, {v6, nil}, {ext, nil}} {
		opts := desired.Options{ExternalIPAllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}
		_, errs := desired.ComputeService(opts, desired.Node{}, nil, desired.APIServiceOf(c.svc), desired.SlicesOf(c.eps...))
		for _, err := range errs {
			got = append(got, skipReason(err))
		}
	}
	got = append(got, skipReason(errors.New("something new")))
	want := []string{"invalid_scheduler_annotation", "unsupported_protocol", "invalid_address", "ip_family_disabled", "external_ip_not_allowed", "other"}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("skip reasons (-want +got):\n%s", diff)
	}
}

// nodePortService is a NodePort Service with one port (nodePort 30080) and externalIPs.
func nodePortService(name, ip string, externalIPs ...string) *v1.Service {
	s := service(name, ip, 80)
	s.Spec.Type = v1.ServiceTypeNodePort
	s.Spec.Ports[0].NodePort = 30080
	s.Spec.ExternalIPs = externalIPs
	return s
}

// hostAddrs is a settable HostAddresses for the daemon.
type hostAddrs struct {
	mu    sync.Mutex
	addrs []netip.Addr
	err   error
}

func (h *hostAddrs) set(err error, as ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addrs, h.err = nil, err
	for _, a := range as {
		h.addrs = append(h.addrs, netip.MustParseAddr(a))
	}
}

func (h *hostAddrs) get() ([]netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.addrs), h.err
}

// virtualServers lists the "PROTO:addr:port" keys of the fake's IPVS table.
func virtualServers(k *fakeKernel) []string {
	var out []string
	for _, line := range strings.Split(k.ipvs.Dump(), "\n") {
		if line != "" && !strings.HasPrefix(line, " ") {
			out = append(out, strings.Fields(line)[0])
		}
	}
	return out
}

func TestNodePortAddressesAndExternalIPAllowList(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.NodePortAddresses = []string{"192.168.1.0/24"}
	cfg.ExternalIPAllowedCIDRs = []string{"203.0.113.0/24"}
	hosts := &hostAddrs{}
	hosts.set(nil, "127.0.0.1", "10.0.0.5", "192.168.1.10")
	h := startWithOptions(t, Options{Config: cfg, Kernel: k.kernel(), HostAddresses: hosts.get},
		nodePortService("web", "10.96.0.10", "203.0.113.7", "198.51.100.7"), slice("web", "node-b", "10.244.2.5"))
	want := []string{"TCP:10.96.0.10:80", "TCP:192.168.1.10:30080", "TCP:203.0.113.7:80"}
	eventually(t, "NodePort on the host address in nodePortAddresses, the allowed externalIP only", func() bool {
		return slices.Equal(virtualServers(k), want)
	})

	eventually(t, "the disallowed externalIP counted as skipped", func() bool {
		return gather(t, h.m)[`kubevs_objects_skipped_total{reason="external_ip_not_allowed"}`] == 1
	})

	// The host's address changes; a full sync (here: a change of the own Node) moves the
	// NodePort and recomputes every Service.
	hosts.set(nil, "127.0.0.1", "192.168.1.20")
	touchNode(t, h, "moved")
	want = []string{"TCP:10.96.0.10:80", "TCP:192.168.1.20:30080", "TCP:203.0.113.7:80"}
	eventually(t, "NodePort on the new host address", func() bool { return slices.Equal(virtualServers(k), want) })

	// A failed read keeps the previous addresses.
	hosts.set(errors.New("netlink says no"))
	fulls := gather(t, h.m)[`kubevs_sync_duration_seconds{mode="full"}`]
	touchNode(t, h, "failed-read")
	eventually(t, "a full sync after the failed read", func() bool {
		return gather(t, h.m)[`kubevs_sync_duration_seconds{mode="full"}`] > fulls
	})
	if got := virtualServers(k); !slices.Equal(got, want) {
		t.Errorf("after a failed read of the host addresses: virtual servers %q, want %q", got, want)
	}
}

// touchNode changes a label of the Node node-a (a full sync) and waits until the daemon
// synced it.
func touchNode(t *testing.T, h *harness, value string) {
	t.Helper()
	ctx := context.Background()
	n, err := h.client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels = map[string]string{"test": value}
	if _, err := h.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Node change", func() bool {
		n := h.d.tracker.Node()
		return n != nil && n.Labels["test"] == value
	})
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// healthCheck asks the healthCheckNodePort at addr: the status code (0 when nothing
// answers) and the body.
func healthCheck(addr string) (int, string) {
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestHealthCheckNodePortFollowsLocalEndpoints(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.NodePortAddresses = []string{"127.0.0.0/8"} // the listeners go on 127.0.0.1
	hosts := &hostAddrs{}
	hosts.set(nil, "127.0.0.1", "192.168.1.10")
	port := freePort(t)
	svc := nodePortService("web", "10.96.0.10")
	svc.Spec.Type = v1.ServiceTypeLoadBalancer
	svc.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	svc.Spec.HealthCheckNodePort = port
	h := startWithOptions(t, Options{Config: cfg, Kernel: k.kernel(), HostAddresses: hosts.get},
		svc, slice("web", "node-a", "10.244.1.5", "10.244.1.6"))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	type answer struct {
		Code int
		Body string
	}
	expect := func(what string, want answer) {
		t.Helper()
		var got answer
		eventually(t, what, func() bool {
			got.Code, got.Body = healthCheck(addr)
			return got == want
		})
	}
	expect("200 with two local endpoints", answer{200, `{"service":{"namespace":"default","name":"web"},"localEndpoints":2,"serviceProxyHealthy":true}`})

	moved := slice("web", "node-b", "10.244.2.5")
	if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(), moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("503 without a local endpoint", answer{503, `{"service":{"namespace":"default","name":"web"},"localEndpoints":0,"serviceProxyHealthy":true}`})

	if err := h.client.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("the port closed with the Service", answer{})
}

func TestReconcilerOptionsDrain(t *testing.T) {
	tests := []struct {
		name   string
		period *metav1.Duration
		want   reconcile.Options
	}{
		{"unset: the reconciler's default", nil, reconcile.Options{}},
		{"zero: delete at once", &metav1.Duration{}, reconcile.Options{NoDrain: true}},
		{"a period: drain that long", &metav1.Duration{Duration: 30 * time.Second}, reconcile.Options{DrainTimeout: 30 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.New()
			c.IPVS.GracefulTerminationPeriod = tt.period
			c.IPVS.ExcludeCIDRs = []string{"192.0.2.0/24"}
			c.IPVS.UDPTimeout = metav1.Duration{Duration: 30 * time.Second}
			got := reconcilerOptions(c, desired.Options{Scheduler: "rr"}, nil)
			tt.want.Timeouts = ipvs.Timeouts{UDP: 30 * time.Second}
			tt.want.Desired = desired.Options{Scheduler: "rr"}
			tt.want.ExcludeCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
			tt.want.DrainFile = "/var/lib/kubevs/drains.json"
			tt.want.FullReadBudget = 0.005 // fullReadMillicores' default
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
				t.Errorf("reconciler options (-want +got):\n%s", diff)
			}
		})
	}
}

// With gracefulTerminationPeriod 0 a removed endpoint's real server goes at once.
func TestZeroGracePeriodDeletesAtOnce(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.IPVS.GracefulTerminationPeriod = &metav1.Duration{}
	h := startWith(t, k.kernel(), cfg, service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5", "10.244.2.6"))
	eventually(t, "two real servers", func() bool { return strings.Count(k.ipvs.Dump(), "->") == 2 })
	k.ipvs.ResetOps()
	if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(), slice("web", "node-b", "10.244.2.5"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "TCP:10.96.0.10:80 rr\n  -> 10.244.2.5:8080 weight 1\n"
	eventually(t, "one real server", func() bool { return k.ipvs.Dump() == want })
	for _, op := range k.ipvs.Ops() {
		if strings.Contains(op, "weight 0") {
			t.Errorf("drained although the grace period is 0: %s", op)
		}
	}
}

// A LoadBalancer's ingress IP is written by UpdateStatus, usually after the Service was
// created and synced: that status-only update must reach the kernel (it once cancelled out
// in the tracker, and the full-sync cache then kept the IP unprogrammed for ever).
func TestLoadBalancerIngressSetAfterFirstSync(t *testing.T) {
	k := newFakeKernel()
	svc := nodePortService("web", "10.96.0.10")
	svc.Spec.Type = v1.ServiceTypeLoadBalancer
	h := start(t, k, svc, slice("web", "node-b", "10.244.2.5"))
	eventually(t, "the ClusterIP's virtual server", func() bool { return strings.Contains(k.ipvs.Dump(), "TCP:10.96.0.10:80 ") })
	if strings.Contains(k.ipvs.Dump(), "203.0.113.7") {
		t.Fatal("the ingress IP is programmed before the status names it")
	}
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	if _, err := h.client.CoreV1().Services("default").UpdateStatus(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ingress IP's virtual server", func() bool { return strings.Contains(k.ipvs.Dump(), "TCP:203.0.113.7:80 ") })

	svc.Status.LoadBalancer.Ingress = nil
	if _, err := h.client.CoreV1().Services("default").UpdateStatus(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ingress IP's virtual server gone", func() bool { return !strings.Contains(k.ipvs.Dump(), "203.0.113.7") })
}
