package daemon

import (
	"testing"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/reconcile"
)

// TestRestartWithoutLoopbackNodePortsTurnsRouteLocalnetBack: an earlier run served NodePorts
// on loopback and set route_localnet=1 (its record says so); this run's configuration has
// no loopback nodePortAddresses, so its rules hold no localnet guard, and the sysctl must not
// stay 1 without it (CVE-2020-8558).
func TestRestartWithoutLoopbackNodePortsTurnsRouteLocalnetBack(t *testing.T) {
	k := newFakeKernel()
	if err := k.sysctl.Set(desired.RouteLocalnetSysctl, "1"); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	if err := saveSysctlChanges(cfg.StateDir, []reconcile.SysctlChange{{Name: desired.RouteLocalnetSysctl, Old: "0", New: "1"}}); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, k.kernel(), cfg, service("web", "10.96.0.10", 80))
	eventually(t, "readiness", h.d.Ready)
	if got, _ := k.sysctl.Get(desired.RouteLocalnetSysctl); got != "0" {
		t.Errorf("route_localnet = %s after a start without loopback NodePort addresses, want 0 (its value before kubevs)", got)
	}
}
