package ipvstest

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// TestRecorderLogsAsTheFake: over a Fake, the Recorder's log is the Fake's own, failures
// (the Fake's ErrNotFound here) included.
func TestRecorderLogsAsTheFake(t *testing.T) {
	f := NewFake()
	r := NewRecorder(f)
	mustDo(t, r.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr"}))
	mustDo(t, r.UpdateVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "wlc"}))
	mustDo(t, r.AddRealServer(web, rs("10.244.0.2", 8080, 1)))
	mustDo(t, r.UpdateRealServer(web, rs("10.244.0.2", 8080, 0)))
	mustDo(t, r.DeleteRealServer(web, rs("10.244.0.2", 8080, 0)))
	if err := r.DeleteRealServer(web, rs("10.244.0.2", 8080, 0)); !errors.Is(err, ipvs.ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	mustDo(t, r.DeleteVirtualServer(web))
	if _, err := r.VirtualServers(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.Ops(), r.Ops()); diff != "" {
		t.Errorf("Recorder's Ops differ from the Fake's (-fake +recorder):\n%s", diff)
	}
	if len(r.Ops()) != 7 || r.Calls(OpVirtualServers) != 0 {
		t.Errorf("recorded %q and %d reads; want the 7 writes only", r.Ops(), r.Calls(OpVirtualServers))
	}
}

func TestRecorderInjection(t *testing.T) {
	f := NewFake()
	mustDo(t, f.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr"}))
	mustDo(t, f.AddRealServer(web, rs("10.244.0.2", 8080, 1)))
	r := NewRecorder(f)
	text := func() string {
		s, err := Text(r)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	kfake.CheckInjection(t, r.Log, text, []kfake.Injection{
		{Op: OpAddVirtualServer, Target: "UDP:[fd00::a]:53 rr", Record: true, Call: func() error {
			return r.AddVirtualServer(ipvs.VirtualServer{Key: dns, Scheduler: "rr"})
		}},
		{Op: OpUpdateVirtualServer, Target: "TCP:10.96.0.1:80 wlc", Record: true, Call: func() error {
			return r.UpdateVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "wlc"})
		}},
		{Op: OpDeleteVirtualServer, Target: "TCP:10.96.0.1:80", Record: true, Call: func() error { return r.DeleteVirtualServer(web) }},
		{Op: OpAddRealServer, Target: "TCP:10.96.0.1:80 10.244.0.9:80 weight 1", Record: true, Call: func() error {
			return r.AddRealServer(web, rs("10.244.0.9", 80, 1))
		}},
		{Op: OpUpdateRealServer, Target: "TCP:10.96.0.1:80 10.244.0.2:8080 weight 0", Record: true, Call: func() error {
			return r.UpdateRealServer(web, rs("10.244.0.2", 8080, 0))
		}},
		{Op: OpDeleteRealServer, Target: "TCP:10.96.0.1:80 10.244.0.2:8080", Record: true, Call: func() error {
			return r.DeleteRealServer(web, rs("10.244.0.2", 8080, 1))
		}},
	})
	if len(f.Ops()) != 2 {
		t.Errorf("injected failures reached the Fake: %q", f.Ops())
	}
}

func TestText(t *testing.T) {
	f := NewFake()
	mustDo(t, f.AddVirtualServer(ipvs.VirtualServer{Key: dns, Scheduler: "sh"}))
	mustDo(t, f.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr"}))
	mustDo(t, f.AddRealServer(web, rs("10.244.0.3", 8080, 1)))
	mustDo(t, f.AddRealServer(web, rs("10.244.0.2", 8080, 0)))
	got, err := Text(f)
	mustDo(t, err)
	if got != f.Dump() {
		t.Errorf("Text without counters differs from Dump:\n%s\nDump:\n%s", got, f.Dump())
	}
	mustDo(t, f.SetConns(web, netip.MustParseAddrPort("10.244.0.3:8080"), 4, 2))
	again, err := Text(f)
	mustDo(t, err)
	want := "TCP:10.96.0.1:80 rr\n  -> 10.244.0.2:8080 weight 0\n  -> 10.244.0.3:8080 weight 1\nUDP:[fd00::a]:53 sh\n"
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("Text (-want +got):\n%s", diff)
	}
	boom := errors.New("boom")
	f.FailNext(OpRealServers, boom)
	if _, err := Text(f); !errors.Is(err, boom) {
		t.Errorf("Text over a failing listing = %v, want boom", err)
	}
}
