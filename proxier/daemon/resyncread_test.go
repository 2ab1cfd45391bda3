package daemon

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
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
