package bench

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
)

func key(a string) ipvs.Key {
	return ipvs.Key{Address: netip.MustParseAddr(a), Protocol: ipvs.TCP, Port: servicePort}
}

func mustAdd(t *testing.T, f *ipvstest.Fake, k ipvs.Key, rs ...string) {
	t.Helper()
	if err := f.AddVirtualServer(ipvs.VirtualServer{Key: k, Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		ap := netip.MustParseAddrPort(r)
		if err := f.AddRealServer(k, ipvs.RealServer{Address: ap.Addr(), Port: ap.Port(), Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKernelCountAndWait(t *testing.T) {
	f := ipvstest.NewFake()
	k := Kernel{IPVS: f}
	want := map[ipvs.Key]bool{key("10.96.0.1"): true, key("10.96.0.2"): true}
	mustAdd(t, f, key("10.96.0.1"))
	mustAdd(t, f, key("10.0.0.9")) // not the benchmark's
	present, total, err := k.CountPresent(want)
	if err != nil || present != 1 || total != 2 {
		t.Fatalf("CountPresent = %d, %d, %v; want 1, 2", present, total, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.WaitAll(ctx, want, time.Millisecond, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitAll with one missing = %v, want a deadline error", err)
	}
	polls := 0
	added := time.Now()
	mustAdd(t, f, key("10.96.0.2"))
	at, err := k.WaitAll(context.Background(), want, time.Millisecond, func(int) { polls++ })
	if err != nil || at.Before(added) || polls != 1 {
		t.Errorf("WaitAll = %v, %v after %d polls; want a time after the add, one poll", at, err, polls)
	}
}

func TestKernelRealServer(t *testing.T) {
	f := ipvstest.NewFake()
	k := Kernel{IPVS: f}
	rs := netip.MustParseAddrPort("100.64.0.1:8080")
	if ok, err := k.HasRealServer(key("10.96.0.1"), rs); ok || err != nil {
		t.Errorf("no virtual server: HasRealServer = %v, %v; want false, nil", ok, err)
	}
	mustAdd(t, f, key("10.96.0.1"), "100.64.0.2:8080")
	if ok, err := k.HasRealServer(key("10.96.0.1"), rs); ok || err != nil {
		t.Errorf("other real server: HasRealServer = %v, %v; want false, nil", ok, err)
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		_ = f.AddRealServer(key("10.96.0.1"), ipvs.RealServer{Address: rs.Addr(), Port: rs.Port(), Weight: 1})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := k.WaitRealServer(ctx, key("10.96.0.1"), rs, time.Millisecond); err != nil {
		t.Errorf("WaitRealServer = %v", err)
	}
}

func TestKernelErrorsNameTheObject(t *testing.T) {
	f := ipvstest.NewFake()
	mustAdd(t, f, key("10.96.0.1"))
	boom := errors.New("boom")
	f.FailNext(ipvstest.OpRealServers, boom)
	_, err := Kernel{IPVS: f}.HasRealServer(key("10.96.0.1"), netip.MustParseAddrPort("1.2.3.4:80"))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "TCP:10.96.0.1:80") {
		t.Errorf("err = %v, want boom naming the virtual server", err)
	}
}

func TestFlushAndFloor(t *testing.T) {
	f := ipvstest.NewFake()
	k := Kernel{IPVS: f}
	mustAdd(t, f, key("10.96.0.1"), "100.64.0.2:8080")
	mustAdd(t, f, key("10.96.0.2"))
	if n, err := k.Flush(); n != 2 || err != nil {
		t.Fatalf("Flush = %d, %v; want 2, nil", n, err)
	}
	fl, err := MeasureFloor(f, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if fl.Ops != 20 || fl.VirtualServers != 5 || fl.RealServers != 15 || fl.OpsPerSec <= 0 {
		t.Errorf("MeasureFloor = %+v, want 20 ops over 5 virtual and 15 real servers", fl)
	}
	if n, _ := k.Flush(); n != 0 {
		t.Errorf("MeasureFloor left %d virtual servers", n)
	}
}

func TestWaitTargets(t *testing.T) {
	f := ipvstest.NewFake()
	k := Kernel{IPVS: f}
	mustAdd(t, f, key("10.96.0.1"), "100.64.0.1:8080")
	targets := []Target{
		{key("10.96.0.1"), netip.MustParseAddrPort("100.64.0.1:8080")},
		{key("10.96.0.1"), netip.MustParseAddrPort("100.64.0.2:8080")},
		{key("10.96.0.2"), netip.MustParseAddrPort("100.64.0.3:8080")},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, missing, err := k.WaitTargets(ctx, targets, time.Millisecond)
	if err != nil || len(missing) != 2 || missing[0] != targets[1] || missing[1] != targets[2] {
		t.Fatalf("WaitTargets = %v, %v; want the last two missing", missing, err)
	}
	if len(targets) != 3 || targets[0].RS.Port() != 8080 {
		t.Fatal("WaitTargets changed its input")
	}
	mustAdd(t, f, key("10.96.0.2"), "100.64.0.3:8080")
	if err := f.AddRealServer(key("10.96.0.1"), ipvs.RealServer{Address: netip.MustParseAddr("100.64.0.2"), Port: 8080, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if _, missing, err := k.WaitTargets(context.Background(), targets, time.Millisecond); err != nil || len(missing) != 0 {
		t.Errorf("WaitTargets = %v, %v; want none missing", missing, err)
	}
}

func TestMeasureExec(t *testing.T) {
	d, err := MeasureExec(context.Background(), 3, "true")
	if err != nil || d <= 0 {
		t.Errorf("MeasureExec(true) = %s, %v; want a positive mean", d, err)
	}
	if _, err := MeasureExec(context.Background(), 3, "false"); err == nil {
		t.Error("MeasureExec(false) = nil error, want the failed run")
	}
}

func TestFloorMarkdownNamesTheIPSetProcess(t *testing.T) {
	r := &Report{Services: 1, Floor: &Floor{VirtualServers: 1, RealServers: 1, Ops: 2, WallMS: 10, OpsPerSec: 200, IPSetExecMS: 1234}}
	if md := r.Markdown(); !strings.Contains(md, "one `ipset list -n` process (mean of 10): 1234 ms") {
		t.Errorf("markdown lacks the ipset process time:\n%s", md)
	}
}
