package daemon

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubevs/kubevs/proxier/desired"
)

// A restarted proxier adopts the kernel state: its first sync writes nothing to IPVS, so
// no connection is disturbed.
func TestRestartWritesNothing(t *testing.T) {
	k := newFakeKernel()
	objs := []any{service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5", "10.244.2.6")}
	h := start(t, k, objs...)
	eventually(t, "readiness", h.d.Ready)
	h.stop()
	before := k.ipvs.Dump()
	k.ipvs.ResetOps()
	k.ipset.ResetOps()
	k.link.ResetOps()

	h2 := startWith(t, k.kernel(), h.cfg, objs...)
	eventually(t, "readiness after restart", h2.d.Ready)
	if got := k.ipvs.Dump(); got != before {
		t.Errorf("IPVS after restart:\n%s\nwant:\n%s", got, before)
	}
	for _, op := range k.ipvs.Ops() {
		if !strings.HasPrefix(op, "list-") {
			t.Errorf("restart wrote to IPVS: %s", op)
		}
	}
	for _, op := range append(k.ipset.Ops(), k.link.Ops()...) {
		if strings.HasPrefix(op, "add") || strings.HasPrefix(op, "del") || strings.HasPrefix(op, "create") || strings.HasPrefix(op, "destroy") {
			t.Errorf("restart changed sets or links: %s", op)
		}
	}
}

// A Service taken over by another proxy (service-proxy-name label) is removed; when the
// label goes, it comes back.
func TestServiceProxyNameLabel(t *testing.T) {
	k := newFakeKernel()
	svc := service("web", "10.96.0.10", 80)
	h := start(t, k, svc, slice("web", "node-b", "10.244.2.5"))
	want := "TCP:10.96.0.10:80 rr\n  -> 10.244.2.5:8080 weight 1\n"
	eventually(t, "the virtual server", func() bool { return k.ipvs.Dump() == want })

	labelled := svc.DeepCopy()
	labelled.Labels = map[string]string{desired.ServiceProxyNameLabel: "other"}
	if _, err := h.client.CoreV1().Services("default").Update(context.Background(), labelled, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the virtual server to go", func() bool { return k.ipvs.Dump() == "" })
	if _, err := h.client.CoreV1().Services("default").Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the virtual server to come back", func() bool { return k.ipvs.Dump() == want })
}

// A change of the own Node (labels, addresses, pod CIDRs) recomputes every Service: a full
// sync. Another Node's change does nothing.
func TestNodeChangeIsFullSync(t *testing.T) {
	k := newFakeKernel()
	h := start(t, k, service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"))
	eventually(t, "readiness", h.d.Ready)
	full := func() float64 { return gather(t, h.m)[`kubevs_sync_duration_seconds{mode="full"}`] }
	if n := full(); n != 1 {
		t.Fatalf("full syncs = %v after start, want 1", n)
	}
	ctx := context.Background()
	if _, err := h.client.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-z"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := h.client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels = map[string]string{v1.LabelTopologyZone: "zone-1"}
	if _, err := h.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a second full sync", func() bool { return full() == 2 })
}

// A listener that cannot open fails Run at once, after stopping what had started (the
// node API socket is removed again).
func TestRunFailsWhenAnAddressIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := testConfig(t)
	cfg.HealthzBindAddress = taken.Addr().String()
	k := newFakeKernel()
	d, err := New(Options{Config: cfg, Client: fake.NewClientset(), Kernel: k.kernel()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "healthz") {
			t.Errorf("Run = %v, want a healthz listen error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, err := os.Stat(cfg.NodeAPISocket); !os.IsNotExist(err) {
		t.Errorf("node API socket left behind: %v", err)
	}
}
