package ipvstest

import (
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

var (
	web = ipvs.Key{Address: netip.MustParseAddr("10.96.0.1"), Protocol: ipvs.TCP, Port: 80}
	dns = ipvs.Key{Address: netip.MustParseAddr("fd00::a"), Protocol: ipvs.UDP, Port: 53}
	pod = netip.MustParseAddr("10.244.0.2")

	addrs = cmpopts.EquateComparable(netip.Addr{})
)

func rs(addr string, port uint16, weight int) ipvs.RealServer {
	return ipvs.RealServer{Address: netip.MustParseAddr(addr), Port: port, Weight: int32(weight)}
}

func TestKernelSemantics(t *testing.T) {
	tests := []struct {
		name    string
		do      func(f *Fake) error
		wantErr error
	}{
		{"add twice", func(f *Fake) error { return f.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr"}) }, ipvs.ErrExist},
		{"update absent", func(f *Fake) error { return f.UpdateVirtualServer(ipvs.VirtualServer{Key: dns, Scheduler: "rr"}) }, ipvs.ErrNotFound},
		{"delete absent", func(f *Fake) error { return f.DeleteVirtualServer(dns) }, ipvs.ErrNotFound},
		{"list real servers of absent", func(f *Fake) error { _, err := f.RealServers(dns); return err }, ipvs.ErrNotFound},
		{"add real server to absent", func(f *Fake) error { return f.AddRealServer(dns, rs("fd00::2", 53, 1)) }, ipvs.ErrNotFound},
		{"add real server twice", func(f *Fake) error { return f.AddRealServer(web, rs("10.244.0.2", 8080, 5)) }, ipvs.ErrExist},
		{"update absent real server", func(f *Fake) error { return f.UpdateRealServer(web, rs("10.244.0.3", 8080, 1)) }, ipvs.ErrNotFound},
		{"delete absent real server", func(f *Fake) error { return f.DeleteRealServer(web, rs("10.244.0.3", 8080, 0)) }, ipvs.ErrNotFound},
		{"no scheduler", func(f *Fake) error { return f.AddVirtualServer(ipvs.VirtualServer{Key: dns}) }, ErrInvalid},
		{"bad protocol", func(f *Fake) error {
			return f.AddVirtualServer(ipvs.VirtualServer{Key: ipvs.Key{Address: pod, Protocol: "ICMP"}, Scheduler: "rr"})
		}, ErrInvalid},
		{"mixed families", func(f *Fake) error { return f.AddRealServer(web, rs("fd00::2", 80, 1)) }, ErrInvalid},
		{"negative weight", func(f *Fake) error { return f.AddRealServer(web, rs("10.244.0.3", 80, -1)) }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake()
			mustDo(t, f.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr"}))
			mustDo(t, f.AddRealServer(web, rs("10.244.0.2", 8080, 1)))
			before := f.Dump()
			if err := tt.do(f); !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(before, f.Dump()); diff != "" {
				t.Errorf("a failed call changed the table (-before +after):\n%s", diff)
			}
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSequenceDumpAndOps(t *testing.T) {
	f := NewFake()
	mustDo(t, f.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr", Timeout: 99}))
	mustDo(t, f.AddVirtualServer(ipvs.VirtualServer{Key: dns, Scheduler: "sh", Persistent: true, Timeout: 10800}))
	mustDo(t, f.AddRealServer(web, rs("10.244.0.3", 8080, 1)))
	mustDo(t, f.AddRealServer(web, rs("10.244.0.2", 8080, 1)))
	mustDo(t, f.AddRealServer(dns, rs("fd00::5", 53, 1)))
	mustDo(t, f.UpdateRealServer(web, rs("10.244.0.3", 8080, 0)))
	mustDo(t, f.SetConns(web, netip.MustParseAddrPort("10.244.0.3:8080"), 2, 7))
	mustDo(t, f.UpdateVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "wlc"}))
	if err := f.DeleteRealServer(dns, rs("fd00::6", 53, 0)); !errors.Is(err, ipvs.ErrNotFound) {
		t.Fatalf("delete absent real server: %v", err)
	}

	wantDump := `TCP:10.96.0.1:80 wlc
  -> 10.244.0.2:8080 weight 1
  -> 10.244.0.3:8080 weight 0 active 2 inactive 7
UDP:[fd00::a]:53 sh persistent 10800s
  -> [fd00::5]:53 weight 1
`
	if diff := cmp.Diff(wantDump, f.Dump()); diff != "" {
		t.Errorf("dump (-want +got):\n%s", diff)
	}
	wantOps := []string{
		"add-vs TCP:10.96.0.1:80 rr",
		"add-vs UDP:[fd00::a]:53 sh persistent 10800s",
		"add-rs TCP:10.96.0.1:80 10.244.0.3:8080 weight 1",
		"add-rs TCP:10.96.0.1:80 10.244.0.2:8080 weight 1",
		"add-rs UDP:[fd00::a]:53 [fd00::5]:53 weight 1",
		"update-rs TCP:10.96.0.1:80 10.244.0.3:8080 weight 0",
		"update-vs TCP:10.96.0.1:80 wlc",
		"delete-rs UDP:[fd00::a]:53 [fd00::6]:53: delete real server [fd00::6]:53 of UDP:[fd00::a]:53: not found",
	}
	if diff := cmp.Diff(wantOps, f.Ops()); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}

	// Listings are sorted and carry the counters; a non-persistent timeout is dropped.
	vss, err := f.VirtualServers()
	mustDo(t, err)
	wantVS := []ipvs.VirtualServer{
		{Key: web, Scheduler: "wlc"},
		{Key: dns, Scheduler: "sh", Persistent: true, Timeout: 10800},
	}
	if diff := cmp.Diff(wantVS, vss, addrs); diff != "" {
		t.Errorf("virtual servers (-want +got):\n%s", diff)
	}
	rss, err := f.RealServers(web)
	mustDo(t, err)
	wantRS := []ipvs.RealServer{rs("10.244.0.2", 8080, 1), {Address: netip.MustParseAddr("10.244.0.3"), Port: 8080, ActiveConns: 2, InactiveConns: 7}}
	if diff := cmp.Diff(wantRS, rss, addrs); diff != "" {
		t.Errorf("real servers (-want +got):\n%s", diff)
	}
	if got := f.Calls(OpRealServers); got != 1 {
		t.Errorf("Calls(list-rs) = %d, want 1", got)
	}

	mustDo(t, f.DeleteVirtualServer(web))
	if _, err := f.RealServers(web); !errors.Is(err, ipvs.ErrNotFound) {
		t.Errorf("real servers of a deleted virtual server: %v, want ErrNotFound", err)
	}
	// Re-adding the virtual server does not bring its old real servers back.
	mustDo(t, f.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr"}))
	if rss, _ := f.RealServers(web); len(rss) != 0 {
		t.Errorf("re-added virtual server has real servers %v", rss)
	}
}

// TestInjection fails every operation by FailNext and by a hook, on calls that would
// otherwise change the table.
func TestInjection(t *testing.T) {
	f := NewFake()
	mustDo(t, f.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr"}))
	mustDo(t, f.AddRealServer(web, rs("10.244.0.2", 8080, 1)))
	f.ResetOps()
	kfake.CheckInjection(t, f.Log, f.Dump, []kfake.Injection{
		{Op: OpVirtualServers, Call: func() error { _, err := f.VirtualServers(); return err }},
		{Op: OpAddVirtualServer, Target: "UDP:[fd00::a]:53 rr", Record: true, Call: func() error {
			return f.AddVirtualServer(ipvs.VirtualServer{Key: dns, Scheduler: "rr"})
		}},
		{Op: OpUpdateVirtualServer, Target: "TCP:10.96.0.1:80 wlc", Record: true, Call: func() error {
			return f.UpdateVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "wlc"})
		}},
		{Op: OpDeleteVirtualServer, Target: "TCP:10.96.0.1:80", Record: true, Call: func() error { return f.DeleteVirtualServer(web) }},
		{Op: OpRealServers, Target: "TCP:10.96.0.1:80", Call: func() error { _, err := f.RealServers(web); return err }},
		{Op: OpAddRealServer, Target: "TCP:10.96.0.1:80 10.244.0.9:80 weight 1", Record: true, Call: func() error {
			return f.AddRealServer(web, rs("10.244.0.9", 80, 1))
		}},
		{Op: OpUpdateRealServer, Target: "TCP:10.96.0.1:80 10.244.0.2:8080 weight 0", Record: true, Call: func() error {
			return f.UpdateRealServer(web, rs("10.244.0.2", 8080, 0))
		}},
		{Op: OpDeleteRealServer, Target: "TCP:10.96.0.1:80 10.244.0.2:8080", Record: true, Call: func() error {
			return f.DeleteRealServer(web, rs("10.244.0.2", 8080, 1))
		}},
	})
}

func TestConcurrentUse(t *testing.T) {
	f := NewFake()
	mustDo(t, f.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr"}))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			addr := netip.AddrFrom4([4]byte{10, 244, 1, byte(i)})
			for range 50 {
				_ = f.AddRealServer(web, ipvs.RealServer{Address: addr, Port: 80, Weight: 1})
				_, _ = f.RealServers(web)
				_ = f.DeleteRealServer(web, ipvs.RealServer{Address: addr, Port: 80})
				_ = f.Dump()
			}
		})
	}
	wg.Wait()
	if rss, err := f.RealServers(web); err != nil || len(rss) != 0 {
		t.Errorf("after balanced adds and deletes: %v, %v", rss, err)
	}
	if got := f.Calls(OpAddRealServer); got != 400 {
		t.Errorf("Calls(add-rs) = %d, want 400", got)
	}
}

func TestSetConnsAbsent(t *testing.T) {
	f := NewFake()
	if err := f.SetConns(web, netip.MustParseAddrPort("10.244.0.2:80"), 1, 1); !errors.Is(err, ipvs.ErrNotFound) {
		t.Errorf("SetConns on absent virtual server: %v", err)
	}
	mustDo(t, f.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr"}))
	if err := f.SetConns(web, netip.MustParseAddrPort("10.244.0.2:80"), 1, 1); !errors.Is(err, ipvs.ErrNotFound) {
		t.Errorf("SetConns on absent real server: %v", err)
	}
}
