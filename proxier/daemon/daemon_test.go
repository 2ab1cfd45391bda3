package daemon

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/conntrack/conntracktest"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link/linktest"
	"github.com/kubevs/kubevs/proxier/metrics"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
	"github.com/kubevs/kubevs/proxier/nodeapi"
	"github.com/kubevs/kubevs/proxier/reconcile"
	"github.com/kubevs/kubevs/proxier/sysctl/sysctltest"
)

// fakeKernel is a whole fake kernel.
type fakeKernel struct {
	ipvs   *ipvstest.Fake
	link   *linktest.Fake
	ipset  *ipsettest.Fake
	nf     *netfiltertest.Fake
	ct     *conntracktest.Fake
	sysctl *sysctltest.Fake
}

func newFakeKernel() *fakeKernel {
	sysctls := fixture.Sysctls()
	delete(sysctls, "net/ipv4/vs/conn_reuse_mode")
	sysctls["net/ipv4/conf/all/arp_announce"] = "0"
	sysctls["net/ipv4/conf/all/route_localnet"] = "0"
	k := fixture.NewKernel(sysctls)
	return &fakeKernel{ipvs: k.IPVS, link: k.Link, ipset: k.IPSet, nf: k.Netfilter, ct: k.Conntrack, sysctl: k.Sysctl}
}

func (f *fakeKernel) kernel() *reconcile.Kernel {
	return &reconcile.Kernel{IPVS: f.ipvs, Link: f.link, IPSet: f.ipset, Netfilter: f.nf, Conntrack: f.ct, Sysctl: f.sysctl}
}

func testConfig(t testing.TB) *config.Configuration {
	dir := t.TempDir()
	c := config.New()
	c.NodeName = "node-a"
	c.ClusterCIDRs = []string{"10.244.0.0/16"}
	c.MinSyncPeriod = &metav1.Duration{Duration: 10 * time.Millisecond}
	c.MetricsBindAddress = "127.0.0.1:0"
	c.HealthzBindAddress = "127.0.0.1:0"
	c.NodeAPISocket = filepath.Join(dir, "run", "proxier.sock")
	c.RegistrationDir = filepath.Join(dir, "registrations")
	c.StateDir = filepath.Join(dir, "state")
	return c
}

type harness struct {
	t      testing.TB
	ctx    context.Context
	client *fake.Clientset
	d      *Daemon
	m      *metrics.Metrics
	cfg    *config.Configuration
	done   chan error
	cancel context.CancelFunc
}

// start runs a daemon on fakes until the test ends.
func start(t testing.TB, k *fakeKernel, objs ...any) *harness {
	t.Helper()
	return startWith(t, k.kernel(), testConfig(t), objs...)
}

// startWith runs a daemon over kernel with the configuration cfg.
func startWith(t testing.TB, kernel *reconcile.Kernel, cfg *config.Configuration, objs ...any) *harness {
	t.Helper()
	return startWithOptions(t, Options{Kernel: kernel, Config: cfg}, objs...)
}

// startWithOptions runs a daemon built from o; the harness sets Client and Metrics.
func startWithOptions(t testing.TB, o Options, objs ...any) *harness {
	t.Helper()
	cfg := o.Config
	client := fake.NewClientset()
	h := &harness{t: t, client: client, m: metrics.New(), cfg: cfg}
	h.ctx = klog.NewContext(context.Background(), logr.Discard())
	if tt, ok := t.(*testing.T); ok { // benchmarks log nothing: the test logger is costly
		_, h.ctx = ktesting.NewTestContext(tt)
	}
	ctx := h.ctx
	for _, o := range append([]any{&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Spec: v1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24"}}}}, objs...) {
		h.create(o)
	}
	o.Client, o.Metrics = client, h.m
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	runCtx, cancel := context.WithCancel(ctx)
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- d.Run(runCtx) }()
	t.Cleanup(func() { h.stop() })
	return h
}

// stop cancels the daemon and waits for Run to return.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Errorf("Run did not return after cancel")
	}
}

func (h *harness) create(o any) {
	h.t.Helper()
	ctx := context.Background()
	var err error
	switch o := o.(type) {
	case *v1.Node:
		_, err = h.client.CoreV1().Nodes().Create(ctx, o, metav1.CreateOptions{})
	case *v1.Service:
		_, err = h.client.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *discoveryv1.EndpointSlice:
		_, err = h.client.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	default:
		h.t.Fatalf("cannot create %T", o)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

// eventually polls cond until it holds or 15 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// service is the ClusterIP Service "default/name" on ip with the port "http" (TCP).
func service(name, ip string, port int32) *v1.Service {
	return fixture.Service("default/"+name, fixture.ClusterIPs(ip), fixture.Ports(fixture.Port("http", v1.ProtocolTCP, port)))
}

func ptr[T any](v T) *T { return &v }

// slice is the IPv4 EndpointSlice "<svc>-1" of the Service svc, changed now, with the ready
// endpoints ips on node (none if empty), port "http" (TCP) 8080.
func slice(svc string, node string, ips ...string) *discoveryv1.EndpointSlice {
	var eps []discoveryv1.Endpoint
	for _, ip := range ips {
		e := fixture.Endpoint(ip, fixture.Ready(true))
		if node != "" {
			e.NodeName = ptr(node)
		}
		eps = append(eps, e)
	}
	return fixture.Slice("default/"+svc+"-1", fixture.OfService(svc), fixture.TriggerTime(time.Now()),
		fixture.AddressType(discoveryv1.AddressTypeIPv4),
		fixture.SlicePorts(fixture.SlicePort("http", v1.ProtocolTCP, 8080)), fixture.Endpoints(eps...))
}

func TestServiceBecomesVirtualServer(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.MetricsServiceTraffic = true
	h := startWith(t, k.kernel(), cfg, service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5", "10.244.2.6"))
	want := "TCP:10.96.0.10:80 rr\n  -> 10.244.2.5:8080 weight 1\n  -> 10.244.2.6:8080 weight 1\n"
	eventually(t, "the virtual server", func() bool { return k.ipvs.Dump() == want })
	eventually(t, "readiness", h.d.Ready)
	if addrs, err := k.link.Addresses("kube-ipvs0"); err != nil || !slices.Equal(addrs, []netip.Addr{netip.MustParseAddr("10.96.0.10")}) {
		t.Errorf("kube-ipvs0 addresses = %v, %v; want [10.96.0.10]", addrs, err)
	}
	if s := h.d.Health().Status(); !s.Ready || !s.Healthy {
		t.Errorf("health = %+v, want ready and healthy", s)
	}
	st := nodeapi.NewClient(h.cfg.NodeAPISocket)
	got, err := st.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(nodeapi.Status{Ready: true, NodeName: "node-a", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24")}}, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("node API status (-want +got):\n%s", diff)
	}

	// A second Service is a partial sync that leaves the first alone.
	k.ipvs.ResetOps()
	h.create(service("api", "10.96.0.20", 443))
	h.create(slice("api", "", "10.244.2.9"))
	want2 := "TCP:10.96.0.10:80 rr\n  -> 10.244.2.5:8080 weight 1\n  -> 10.244.2.6:8080 weight 1\nTCP:10.96.0.20:443 rr\n  -> 10.244.2.9:8080 weight 1\n"
	eventually(t, "the second virtual server", func() bool { return k.ipvs.Dump() == want2 })
	for _, op := range k.ipvs.Ops() {
		if strings.Contains(op, "10.96.0.10") {
			t.Errorf("partial sync touched the unchanged Service: %s", op)
		}
	}
	eventually(t, "metrics of the syncs", func() bool {
		m := gather(t, h.m)
		return m[`kubevs_sync_duration_seconds{mode="full"}`] >= 1 &&
			m[`kubevs_sync_duration_seconds{mode="partial"}`] >= 1 &&
			// The first slice was listed at start: only the second counts.
			m["kubevs_network_programming_duration_seconds"] == 1 &&
			m[`kubevs_objects_programmed{object="virtual_servers"}`] == 2 &&
			m[`kubevs_objects_programmed{object="real_servers"}`] == 3 &&
			m[`kubevs_objects_programmed{object="vips"}`] == 2
	})
	// The same syncs under kube-proxy's names.
	eventually(t, "kube-proxy's metrics of the syncs", func() bool {
		m := gather(t, h.m)
		return m[`kubeproxy_sync_proxy_rules_duration_seconds{ip_family="IPv4"}`] >= 2 &&
			m[`kubeproxy_network_programming_duration_seconds{ip_family="IPv4"}`] == 1 &&
			m[`kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}`] > 0 &&
			m[`kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv4"}`] > 0 &&
			m["kubeproxy_sync_proxy_rules_service_changes_total"] >= 1 &&
			m["kubeproxy_sync_proxy_rules_endpoint_changes_total"] >= 1 &&
			m["kubeproxy_sync_proxy_rules_service_changes_pending"] == 0
	})

	// Per-Service traffic from the IPVS counters, mapped by the last desired state.
	web := ipvs.Key{Address: netip.MustParseAddr("10.96.0.10"), Protocol: ipvs.TCP, Port: 80}
	if err := k.ipvs.SetStats(web, ipvs.Stats{Connections: 4, PacketsIn: 40, PacketsOut: 30, BytesIn: 400, BytesOut: 3000}); err != nil {
		t.Fatal(err)
	}
	m := gather(t, h.m)
	labels := `{address_family="IPv4",name="web",namespace="default",port="80",protocol="TCP"}`
	if m["kubevs_service_connections_total"+labels] != 4 || m["kubevs_service_bytes_out_total"+labels] != 3000 {
		t.Errorf("per-Service IPVS counters: connections %v, bytes out %v; want 4, 3000",
			m["kubevs_service_connections_total"+labels], m["kubevs_service_bytes_out_total"+labels])
	}

	// Shutdown leaves the kernel as it is.
	h.stop()
	if got := k.ipvs.Dump(); got != want2 {
		t.Errorf("after shutdown the IPVS table changed:\n%s", got)
	}
}

// gather returns the kubevs and kube-proxy metrics as name{labels} -> value; histograms give their
// sample count.
func gather(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), metrics.Namespace+"_") && !strings.HasPrefix(mf.GetName(), "kubeproxy_") {
			continue
		}
		for _, mm := range mf.GetMetric() {
			name := mf.GetName()
			var labels []string
			for _, l := range mm.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case mm.GetHistogram() != nil:
				out[name] = float64(mm.GetHistogram().GetSampleCount())
			case mm.GetCounter() != nil:
				out[name] = mm.GetCounter().GetValue()
			case mm.GetGauge() != nil:
				out[name] = mm.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestSyncErrorIsRetriedAndConverges(t *testing.T) {
	k := newFakeKernel()
	injected := errors.New("injected failure")
	k.ipvs.FailNext(ipvstest.OpAddRealServer, injected)
	k.ipvs.FailNext(ipvstest.OpAddRealServer, injected)
	h := start(t, k, service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"))
	want := "TCP:10.96.0.10:80 rr\n  -> 10.244.2.5:8080 weight 1\n"
	eventually(t, "convergence after the failures", func() bool { return k.ipvs.Dump() == want && h.d.Ready() })
	if n := gather(t, h.m)[`kubevs_sync_failures_total{mode="full"}`]; n < 1 {
		t.Errorf("sync failures = %v, want at least 1", n)
	}
}

func TestRegistrationsMakeEndpointsLocalAndFlushConntrack(t *testing.T) {
	k := newFakeKernel()
	pod := netip.MustParseAddr("10.244.1.7")
	k.ct.Add(conntracktest.NATFlow(ipvs.TCP, netip.MustParseAddrPort("10.244.1.3:40000"),
		netip.MustParseAddrPort("10.96.0.10:80"), netip.AddrPortFrom(pod, 8080)))
	h := start(t, k, service("web", "10.96.0.10", 80), slice("web", "", pod.String()))
	eventually(t, "readiness", h.d.Ready)
	loop := "10.244.1.7,tcp:8080,10.244.1.7"
	if strings.Contains(k.ipset.Dump(), loop) {
		t.Fatalf("endpoint without nodeName is local before any registration:\n%s", k.ipset.Dump())
	}
	c := nodeapi.NewClient(h.cfg.NodeAPISocket)
	reg := nodeapi.Registration{ContainerID: "c1", IfName: "eth0", IPs: []netip.Addr{pod}}
	if err := c.Register(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the loopback entry", func() bool { return strings.Contains(k.ipset.Dump(), loop) })
	if len(k.ct.Flows()) != 1 {
		t.Fatalf("flows deleted at registration: %s", k.ct.Dump())
	}
	if err := c.Unregister(context.Background(), reg.Key()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the loopback entry to go", func() bool { return !strings.Contains(k.ipset.Dump(), loop) })
	eventually(t, "the pod's flows to go", func() bool { return len(k.ct.Flows()) == 0 })
}

// TestRegistrationOutsidePodCIDRsIsRefused: a node API caller cannot register another
// node's pod IP and then unregister it to make the proxier delete that pod's flows.
func TestRegistrationOutsidePodCIDRsIsRefused(t *testing.T) {
	k := newFakeKernel()
	foreign := netip.MustParseAddr("10.244.2.9") // node-a has 10.244.1.0/24
	k.ct.Add(conntracktest.NATFlow(ipvs.TCP, netip.MustParseAddrPort("10.244.1.3:40000"),
		netip.MustParseAddrPort("10.96.0.10:80"), netip.AddrPortFrom(foreign, 8080)))
	h := start(t, k, service("web", "10.96.0.10", 80), slice("web", "node-b", foreign.String()))
	eventually(t, "readiness", h.d.Ready)
	c := nodeapi.NewClient(h.cfg.NodeAPISocket)
	reg := nodeapi.Registration{ContainerID: "c1", IfName: "eth0", IPs: []netip.Addr{foreign}}
	err := c.Register(context.Background(), reg)
	if err == nil || !strings.Contains(err.Error(), "outside the podCIDRs [10.244.1.0/24] of node node-a") {
		t.Fatalf("register %s = %v; want refused as outside the podCIDRs", foreign, err)
	}
	if err := c.Unregister(context.Background(), reg.Key()); err != nil {
		t.Fatal(err)
	}
	h.d.runner.Run()
	eventually(t, "a sync after the unregister", func() bool { return h.d.Ready() })
	time.Sleep(100 * time.Millisecond) // a flush would be in the sync the unregister triggers
	if len(k.ct.Flows()) != 1 {
		t.Fatalf("flows of %s deleted by a caller that never owned it:\n%s", foreign, k.ct.Dump())
	}
}

func TestCleanupRemovesOwnedState(t *testing.T) {
	k := newFakeKernel()
	// No cluster CIDR, so no KUBE-CLUSTER-IP-MASQ chain: netfiltertest's Cleanup cannot yet
	// delete a chain another owned chain jumps to (reconcile's cleanup test does the same).
	cfg := testConfig(t)
	cfg.ClusterCIDRs = nil
	h := startWith(t, k.kernel(), cfg, service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"))
	eventually(t, "readiness", h.d.Ready)
	h.stop()
	if err := Cleanup(h.ctx, h.cfg, k.kernel()); err != nil {
		t.Fatal(err)
	}
	if got := k.ipvs.Dump(); got != "" {
		t.Errorf("IPVS after cleanup:\n%s", got)
	}
	if got := k.ipset.Dump(); got != "" {
		t.Errorf("sets after cleanup:\n%s", got)
	}
	if _, err := k.link.Addresses("kube-ipvs0"); err == nil {
		t.Errorf("kube-ipvs0 still exists after cleanup")
	}
	if v, _ := k.sysctl.Get("net/ipv4/vs/conntrack"); v != "0" {
		t.Errorf("net/ipv4/vs/conntrack = %s after cleanup, want the original 0", v)
	}
	if v, _ := k.sysctl.Get("net/ipv4/ip_forward"); v != "1" {
		t.Errorf("ip_forward = %s after cleanup, want 1 (kept)", v)
	}
}

// TestServiceTrafficMetricsOffByDefault: without metricsServiceTraffic a scrape reads no
// IPVS counters and serves no per-Service series (five per Service port, per node).
func TestServiceTrafficMetricsOffByDefault(t *testing.T) {
	k := newFakeKernel()
	h := start(t, k, service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"))
	eventually(t, "readiness", h.d.Ready)
	web := ipvs.Key{Address: netip.MustParseAddr("10.96.0.10"), Protocol: ipvs.TCP, Port: 80}
	if err := k.ipvs.SetStats(web, ipvs.Stats{Connections: 4}); err != nil {
		t.Fatal(err)
	}
	for name := range gather(t, h.m) {
		if strings.HasPrefix(name, "kubevs_service_") {
			t.Errorf("series %s served without metricsServiceTraffic", name)
		}
	}
}
