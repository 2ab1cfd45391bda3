package conntracktest

import (
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/conntrack"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

// flows is a small table: clients reaching DNS and the API through IPVS, and a pod's own flow.
func flows() []Flow {
	return []Flow{
		NATFlow(ipvs.UDP, ap("10.0.0.1:1000"), ap("10.96.0.10:53"), ap("10.244.0.5:53")),
		NATFlow(ipvs.UDP, ap("10.0.0.2:1000"), ap("10.96.0.10:53"), ap("10.244.0.6:53")),
		NATFlow(ipvs.TCP, ap("10.0.0.1:1001"), ap("10.96.0.10:53"), ap("10.244.0.5:53")),
		NATFlow(ipvs.UDP, ap("10.0.0.1:1003"), ap("10.96.0.11:53"), ap("10.244.0.5:5353")),
		NATFlow(ipvs.SCTP, ap("10.0.0.1:1004"), ap("10.96.0.12:9"), ap("10.244.0.8:9")),
		{Proto: ipvs.UDP, OrigSrc: ap("10.244.0.7:4000"), OrigDst: ap("10.0.0.9:9"), ReplySrc: ap("10.0.0.9:9"), ReplyDst: ap("10.244.0.7:4000")},
		NATFlow(ipvs.UDP, ap("[fd00::1]:1000"), ap("[fd00:96::a]:53"), ap("[fd00:244::5]:53")),
	}
}

func TestFakeDeletes(t *testing.T) {
	tests := []struct {
		name string
		del  func(*Fake) (int, error)
		op   string
		left int
	}{
		{"orig dst", func(f *Fake) (int, error) { return f.DeleteByOrigDst(ipvs.UDP, ip("10.96.0.10"), 53) }, "delete-orig-dst UDP 10.96.0.10:53 = 2", 5},
		{"orig dst other proto", func(f *Fake) (int, error) { return f.DeleteByOrigDst(ipvs.SCTP, ip("10.96.0.10"), 53) }, "delete-orig-dst SCTP 10.96.0.10:53 = 0", 7},
		{"orig dst IPv6", func(f *Fake) (int, error) { return f.DeleteByOrigDst(ipvs.UDP, ip("fd00:96::a"), 53) }, "delete-orig-dst UDP [fd00:96::a]:53 = 1", 6},
		{"reply src port", func(f *Fake) (int, error) { return f.DeleteByReplySrc(ipvs.UDP, ip("10.244.0.5"), 53) }, "delete-reply-src UDP 10.244.0.5:53 = 1", 6},
		{"reply src any port", func(f *Fake) (int, error) { return f.DeleteByReplySrc(ipvs.UDP, ip("10.244.0.5"), 0) }, "delete-reply-src UDP 10.244.0.5:0 = 2", 5},
		{"addr", func(f *Fake) (int, error) { return f.DeleteByAddr(ip("10.244.0.5")) }, "delete-addr 10.244.0.5 = 3", 4},
		{"addr mapped", func(f *Fake) (int, error) { return f.DeleteByAddr(ip("::ffff:10.244.0.7")) }, "delete-addr 10.244.0.7 = 1", 6},
		{"many filters in one call", func(f *Fake) (int, error) {
			return f.Delete([]conntrack.Filter{
				{Match: conntrack.ReplySrc, Proto: ipvs.UDP, Addr: ip("10.244.0.6"), Port: 53},
				{Match: conntrack.Addr, Addr: ip("fd00::1")},
				{Match: conntrack.OrigDst, Proto: ipvs.SCTP, Addr: ip("10.96.0.12"), Port: 9},
			})
		}, "delete reply-src UDP 10.244.0.6:53; addr fd00::1; orig-dst SCTP 10.96.0.12:9 = 3", 4},
		{"no filter", func(f *Fake) (int, error) { return f.Delete(nil) }, "delete = 0", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(flows()...)
			n, err := tt.del(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(f.Flows()); got != tt.left || n != 7-tt.left {
				t.Errorf("deleted %d, %d left; want %d left:\n%s", n, got, tt.left, f.Dump())
			}
			if diff := cmp.Diff([]string{tt.op}, f.Ops()); diff != "" {
				t.Errorf("Ops (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFakeDumpAndFailures(t *testing.T) {
	f := NewFake(flows()[:2]...)
	f.Add(flows()[0]) // a duplicate is one entry, as in the kernel
	want := "UDP 10.0.0.1:1000 -> 10.96.0.10:53 reply 10.244.0.5:53 -> 10.0.0.1:1000\n" +
		"UDP 10.0.0.2:1000 -> 10.96.0.10:53 reply 10.244.0.6:53 -> 10.0.0.2:1000\n"
	if diff := cmp.Diff(want, f.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
	boom := errors.New("boom")
	f.FailNext(OpDeleteByAddr, boom)
	if _, err := f.DeleteByAddr(ip("10.0.0.1")); !errors.Is(err, boom) {
		t.Errorf("injected failure = %v", err)
	}
	if _, err := f.DeleteByOrigDst("ICMP", ip("10.0.0.1"), 0); err == nil {
		t.Errorf("unknown protocol accepted")
	}
	if _, err := f.DeleteByAddr(netip.Addr{}); err == nil {
		t.Errorf("invalid address accepted")
	}
	if n, err := f.DeleteByAddr(ip("10.0.0.1")); err != nil || n != 1 {
		t.Errorf("retry = %d, %v; want 1 flow", n, err)
	}
	wantOps := []string{"delete-addr 10.0.0.1 (failed)", "delete-orig-dst ICMP 10.0.0.1:0 (failed)", "delete-addr invalid IP (failed)", "delete-addr 10.0.0.1 = 1"}
	if diff := cmp.Diff(wantOps, f.Ops()); diff != "" {
		t.Errorf("Ops (-want +got):\n%s", diff)
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i)}), 1000)
				f.Add(NATFlow(ipvs.UDP, c, ap("10.96.0.10:53"), ap("10.244.0.5:53")))
				_ = f.Dump()
			}
		})
	}
	wg.Wait()
	if n, err := f.DeleteByReplySrc(ipvs.UDP, ip("10.244.0.5"), 53); err != nil || n != 400 {
		t.Errorf("deleted %d, %v; want 400", n, err)
	}
}

// TestInjection fails every verb by FailNext and by a hook, on calls that would otherwise
// delete flows.
func TestInjection(t *testing.T) {
	f := NewFake(flows()...)
	kfake.CheckInjection(t, f.Log, f.Dump, []kfake.Injection{
		{Op: OpDeleteByOrigDst, Target: "UDP 10.96.0.10:53", Record: true, Call: func() error {
			_, err := f.DeleteByOrigDst(ipvs.UDP, ip("10.96.0.10"), 53)
			return err
		}},
		{Op: OpDeleteByReplySrc, Target: "UDP 10.244.0.5:0", Record: true, Call: func() error {
			_, err := f.DeleteByReplySrc(ipvs.UDP, ip("10.244.0.5"), 0)
			return err
		}},
		{Op: OpDeleteByAddr, Target: "10.244.0.5", Record: true, Call: func() error { _, err := f.DeleteByAddr(ip("10.244.0.5")); return err }},
	})
}
