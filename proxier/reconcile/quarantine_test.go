package reconcile

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
)

// A Service whose virtual server the kernel always refuses (its scheduler's module is
// missing: ENOENT) fails the syncs that touch it until it is quarantined; then syncs succeed,
// other Services keep being programmed by partial syncs, the quarantined one is retried on
// its own doubling delay only, and it recovers at the first retry after the error clears.
func TestQuarantineIsolatesAFailingVirtualServer(t *testing.T) {
	bad := svc{name: "default/bad", ip: "10.96.0.99", ports: []string{"TCP:80"}, eps: []string{"10.244.1.9"}, sched: "mh"}
	f, r := startSynced(t, web)
	c := ctx(t)
	noModule := func(op, target string) error {
		if op == ipvstest.OpAddVirtualServer && strings.HasSuffix(target, " mh") {
			return fmt.Errorf("no ip_vs_mh: %w", syscall.ENOENT)
		}
		return nil
	}
	f.ipvs.SetHook(noModule)
	defer f.ipvs.SetHook(nil)
	if err := r.Apply(c, changes(t, bad)); err == nil {
		t.Fatalf("Apply of the failing Service succeeded")
	}
	if err := r.Resync(c, all(t, web, bad)); err == nil {
		t.Fatalf("second failure: Resync succeeded")
	}
	if len(r.Quarantined()) != 0 {
		t.Fatalf("quarantined after 2 failures: %+v", r.Quarantined())
	}
	// The third failure quarantines it: the sync reports success.
	must(t, r.Resync(c, all(t, web, bad)))
	q := r.Quarantined()
	if len(q) != 1 || q[0].Key != mustKey("TCP:10.96.0.99:80") || q[0].Reason != ReasonAddVirtualServer || q[0].Failures != 3 ||
		!q[0].Next.Equal(f.now.Add(DefaultQuarantineRetry)) {
		t.Fatalf("Quarantined() = %+v", q)
	}
	if diff := cmp.Diff(map[string]int{ReasonAddVirtualServer: 1}, r.Quarantines()); diff != "" {
		t.Errorf("Quarantines (-want +got):\n%s", diff)
	}
	f.reset()
	// Another Service changes: a partial sync programs it, and leaves the quarantined alone.
	must(t, r.Apply(c, changes(t, web3)))
	f.checkOps(t, "partial sync of another Service", []string{"add-rs TCP:10.96.0.10:80 10.244.2.7:8080 weight 1"})
	must(t, r.Resync(c, all(t, web3, bad)))
	f.checkOps(t, "resync before the retry is due", nil)
	if r.RetryDue() {
		t.Errorf("retry due before its delay")
	}
	// Its own retry: due after 5 s, fails again, the next delay doubles.
	f.now = f.now.Add(DefaultQuarantineRetry)
	if !r.RetryDue() {
		t.Fatalf("retry not due after %s", DefaultQuarantineRetry)
	}
	must(t, r.RetryQuarantined(c))
	f.checkOps(t, "failed retry", []string{"add-vs TCP:10.96.0.99:80 mh: no ip_vs_mh: no such file or directory"})
	if q := r.Quarantined(); len(q) != 1 || !q[0].Next.Equal(f.now.Add(2*DefaultQuarantineRetry)) {
		t.Errorf("after a failed retry: %+v, want the next retry in %s", q, 2*DefaultQuarantineRetry)
	}
	f.now = f.now.Add(DefaultQuarantineRetry)
	must(t, r.RetryQuarantined(c))
	f.checkOps(t, "retry not due", nil)
	// The module is loaded: the next retry programs it and it leaves quarantine.
	f.ipvs.SetHook(nil)
	f.now = f.now.Add(DefaultQuarantineRetry)
	must(t, r.RetryQuarantined(c))
	f.checkOps(t, "recovery", []string{"add-vs TCP:10.96.0.99:80 mh", "add-rs TCP:10.96.0.99:80 10.244.1.9:8080 weight 1"})
	if q := r.Quarantined(); len(q) != 0 {
		t.Errorf("still quarantined after recovery: %+v", q)
	}
	must(t, r.Resync(c, all(t, web3, bad)))
	f.checkOps(t, "resync after recovery", nil)
}

// A quarantined virtual server whose Service goes away leaves quarantine: nothing to retry.
func TestQuarantineForgetsDeletedServices(t *testing.T) {
	bad := svc{name: "default/bad", ip: "10.96.0.99", ports: []string{"TCP:80"}, eps: []string{"10.244.1.9"}, sched: "mh"}
	f, r := startSynced(t)
	c := ctx(t)
	f.ipvs.FailNext(ipvstest.OpAddVirtualServer, syscall.EINVAL)
	f.ipvs.FailNext(ipvstest.OpAddVirtualServer, syscall.EINVAL)
	f.ipvs.FailNext(ipvstest.OpAddVirtualServer, syscall.EINVAL)
	for range 3 {
		_ = r.Resync(c, all(t, bad))
	}
	if len(r.Quarantined()) != 1 {
		t.Fatalf("not quarantined: %+v", r.Quarantined())
	}
	must(t, r.Apply(c, changes(t, svc{name: "default/bad"})))
	if q := r.Quarantined(); len(q) != 0 {
		t.Errorf("quarantine of a deleted Service kept: %+v", q)
	}
}

// Quarantine never hides a broken kernel: when every virtual server a sync tries fails, the
// sync fails, however many times it is retried.
func TestQuarantineDoesNotHideABrokenKernel(t *testing.T) {
	f, r := startSynced(t)
	c := ctx(t)
	f.ipvs.SetHook(func(op, _ string) error {
		if op == ipvstest.OpAddVirtualServer {
			return fmt.Errorf("netlink: %w", syscall.ENOPROTOOPT)
		}
		return nil
	})
	defer f.ipvs.SetHook(nil)
	for i := range 5 {
		if err := r.Resync(c, all(t, web, dns)); err == nil {
			t.Fatalf("resync %d succeeded with every virtual server failing", i+1)
		}
	}
	if q := r.Quarantined(); len(q) != 3 {
		t.Errorf("Quarantined() = %+v, want the 3 virtual servers (retried on their own delay)", q)
	}
}
