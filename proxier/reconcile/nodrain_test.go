package reconcile

import (
	"testing"
	"time"
)

// With NoDrain a removed TCP real server is deleted at once, nothing drains, and an
// adopted weight-0 real server nobody wants goes with the first resync.
func TestNoDrainDeletesAtOnce(t *testing.T) {
	f := newFakes()
	r := New(f.kernel(), Options{Desired: testOpts, NoDrain: true, Now: func() time.Time { return f.now }})
	c := ctx(t)
	if err := r.Start(c); err != nil {
		t.Fatal(err)
	}
	if err := r.Resync(c, all(t, web3)); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := f.ipvs.SetConns(mustKey("TCP:10.96.0.10:80"), mustAP("10.244.2.7:8080"), 4, 2); err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(c, changes(t, web)); err != nil {
		t.Fatal(err)
	}
	f.checkOps(t, "remove with connections open", []string{"delete-rs TCP:10.96.0.10:80 10.244.2.7:8080"})
	if r.Draining() != 0 {
		t.Errorf("draining %d, want 0", r.Draining())
	}

	// A restart from a kernel a draining proxier left: the weight-0 real server goes.
	f2, r2 := startSynced(t, web3)
	if err := r2.Apply(c, changes(t, web)); err != nil {
		t.Fatal(err)
	}
	f2.checkOps(t, "drain under the default", []string{"update-rs TCP:10.96.0.10:80 10.244.2.7:8080 weight 0"})
	f2.reset()
	r3 := New(f2.kernel(), Options{Desired: testOpts, NoDrain: true, Now: func() time.Time { return f2.now }})
	if err := r3.Start(c); err != nil {
		t.Fatal(err)
	}
	if err := r3.Resync(c, all(t, web)); err != nil {
		t.Fatal(err)
	}
	f2.checkOps(t, "restart with NoDrain", []string{"delete-rs TCP:10.96.0.10:80 10.244.2.7:8080"})
	if r3.Draining() != 0 {
		t.Errorf("after the restart draining %d, want 0", r3.Draining())
	}
}
