package reconcile

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
)

// Start sets the configured IPVS timeouts (the zero ones left alone); none configured, it
// sets nothing; a kernel that refuses them does not stop Start.
func TestStartSetsIPVSTimeouts(t *testing.T) {
	c := ctx(t)
	f := newFakes()
	want := ipvs.Timeouts{TCP: 900 * time.Second, UDP: 30 * time.Second}
	must(t, New(f.kernel(), Options{Desired: testOpts, Timeouts: want}).Start(c))
	if diff := cmp.Diff(want, f.ipvs.Timeouts()); diff != "" {
		t.Errorf("timeouts after Start (-want +got):\n%s", diff)
	}
	if n := f.ipvs.Calls(ipvstest.OpSetTimeouts); n != 1 {
		t.Errorf("%d calls to set the timeouts, want 1", n)
	}

	f2 := newFakes()
	must(t, f2.reconciler().Start(c))
	if n := f2.ipvs.Calls(ipvstest.OpSetTimeouts); n != 0 {
		t.Errorf("no timeouts configured: %d calls to set them, want 0", n)
	}

	f3 := newFakes()
	f3.ipvs.FailNext(ipvstest.OpSetTimeouts, errors.New("injected: EPERM"))
	must(t, New(f3.kernel(), Options{Desired: testOpts, Timeouts: want}).Start(c))
}
