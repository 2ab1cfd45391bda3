package daemon

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
	"github.com/kubevs/kubevs/proxier/reconcile"
	"github.com/kubevs/kubevs/proxier/runner"
)

// TestChangeAppliedWhilePeriodicResyncReads: the periodic resync's read of the fixed rules
// (iptables-save, here a fake that blocks until released) does not hold back a change: a
// Service created meanwhile is in IPVS while the read is still blocked, and the resync ends
// once it is released. Before the read left the kernel lock, the change waited for it.
func TestChangeAppliedWhilePeriodicResyncReads(t *testing.T) {
	k := newFakeKernel()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := testConfig(t)
	h := startWithOptions(t, Options{Kernel: k.kernel(), Config: cfg, Clock: clk},
		service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"))
	tick := func() { clk.Step(time.Millisecond) } // timers fire only when the fake clock moves
	eventually(t, "the first sync", func() bool { tick(); return h.d.Ready() })
	fulls := func() float64 { return gather(t, h.m)[`kubevs_sync_duration_seconds{mode="full"}`] }
	before := fulls()

	// The next read of the fixed rules, by the resync or for it, blocks until released.
	blocked, release := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	k.nf.SetHook(func(op, _ string) error {
		if (op == netfiltertest.OpVerify || op == netfiltertest.OpEnsure) && armed.CompareAndSwap(true, false) {
			close(blocked)
			<-release
		}
		return nil
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)

	// The periodic resync falls due. Stepped again until its read starts: on a loaded
	// machine the runner may set its timer only after a step, which that step then missed.
	deadline := time.After(15 * time.Second)
	for waiting := true; waiting; {
		clk.Step(cfg.SyncPeriod.Duration)
		select {
		case <-blocked:
			waiting = false
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("the periodic resync did not read the fixed rules")
		}
	}
	h.create(service("api", "10.96.0.20", 443))
	h.create(slice("api", "node-b", "10.244.3.7"))
	eventually(t, "api's virtual server while the resync's read is blocked", func() bool {
		tick()
		return slices.Contains(virtualServers(k), "TCP:10.96.0.20:443")
	})
	if got := fulls(); got != before {
		t.Fatalf("%v full syncs ended while the read was blocked, want none", got-before)
	}
	unblock()
	eventually(t, "the periodic resync after the read", func() bool { tick(); return fulls() > before })
	if got := gather(t, h.m)["kubevs_resync_read_duration_seconds"]; got != 1 {
		t.Errorf("kubevs_resync_read_duration_seconds count = %v, want 1 (one read)", got)
	}
	if got := gather(t, h.m)[`kubevs_resync_reads_total{kind="full"}`]; got != 1 {
		t.Errorf(`kubevs_resync_reads_total{kind="full"} = %v, want 1 (the first read is full)`, got)
	}
}

// TestEscalatedProbeRepairsThroughTheDaemon: with a small full-read budget, a periodic
// resync after the first probes; a virtual server deleted behind kubevs's back makes the
// probe read everything (kubevs_resync_reads_total{kind="escalated"}), the daemon has the
// Services copied under kmu and the read compared without it (CopyServices, Plan), and the
// resync puts the virtual server back.
func TestEscalatedProbeRepairsThroughTheDaemon(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.SyncPeriod = metav1.Duration{Duration: time.Hour} // the test makes the resyncs
	cfg.FullReadMillicores = ptr[int32](1)
	h := startWith(t, k.kernel(), cfg, service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"),
		service("api", "10.96.0.20", 443), slice("api", "node-b", "10.244.3.7"))
	eventually(t, "readiness", h.d.Ready)
	resync := func() {
		t.Helper()
		h.d.readForResync(h.ctx)
		h.d.kmu.Lock()
		waits := h.d.reading != nil && h.d.reading.NeedsServices()
		h.d.kmu.Unlock()
		if waits {
			t.Error("the read waits for the Services: the sync would compare under kmu")
		}
		if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil {
			t.Fatal(err)
		}
	}
	resync() // the first full read: the budget counts from it
	key := ipvs.Key{Address: netip.MustParseAddr("10.96.0.10"), Protocol: ipvs.TCP, Port: 80}
	if err := k.ipvs.DeleteVirtualServer(key); err != nil {
		t.Fatal(err)
	}
	resync()
	if n := testutil.ToFloat64(h.m.ResyncReads.WithLabelValues(reconcile.ReadEscalated)); n != 1 {
		t.Errorf("escalated reads: %v, want 1", n)
	}
	vss, err := k.ipvs.VirtualServers()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(vss, func(vs ipvs.VirtualServer) bool { return vs.Key == key }) {
		t.Errorf("virtual server %v not put back: %v", key, vss)
	}
}
