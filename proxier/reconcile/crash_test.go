package reconcile

import (
	"testing"

	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
)

// killed stands for a kill -9: the hook panics at the first set member or address written.
type killed struct{}

// TestKillBetweenVirtualServerAndItsMarkLeaksNothing: a proxier killed in the middle of
// programming a new Service, whose Service is deleted before the next proxier starts. The
// next proxier decides what it owns from the kernel (bound VIPs, members of its sets), so a
// virtual server must never exist without its mark: the marks go in first. Then the restarted
// proxier's Resync removes everything of the deleted Service.
func TestKillBetweenVirtualServerAndItsMarkLeaksNothing(t *testing.T) {
	f, _ := startSynced(t)
	r := f.reconciler()
	if err := r.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	f.ipset.SetHook(func(op, _ string) error {
		if op == ipsettest.OpAdd {
			panic(killed{})
		}
		return nil
	})
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(killed); !ok {
					panic(p)
				}
			}
		}()
		_ = r.Apply(ctx(t), changes(t, web))
		t.Fatal("the proxier was not killed: Apply wrote no set member")
	}()
	f.ipset.SetHook(nil)

	// web is deleted while no proxier runs; the next one starts and resyncs to nothing.
	r2 := f.reconciler()
	if err := r2.Start(ctx(t)); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := r2.Resync(ctx(t), all(t)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	if vss, err := f.ipvs.VirtualServers(); err != nil || len(vss) != 0 {
		t.Errorf("virtual servers left after the restart: %v (err %v)\n%s", vss, err, f.ipvs.Dump())
	}
}
