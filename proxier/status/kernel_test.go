package status

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/link/linktest"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadKernel(t *testing.T) {
	iv, lk := ipvstest.NewFake(), linktest.NewFake()
	must(t, lk.EnsureDummy("kube-ipvs0"))
	for _, a := range []string{"10.96.0.53", "10.96.0.10"} {
		must(t, lk.AddAddress("kube-ipvs0", netip.MustParseAddr(a)))
	}
	web := ipvs.VirtualServer{Key: key(ipvs.TCP, "10.96.0.10", 80), Scheduler: "rr"}
	dns := ipvs.VirtualServer{Key: key(ipvs.UDP, "10.96.0.53", 53), Scheduler: "lc", Persistent: true, Timeout: 60}
	must(t, iv.AddVirtualServer(dns))
	must(t, iv.AddVirtualServer(web))
	must(t, iv.AddRealServer(web.Key, rs("10.244.1.6:8080", 1)))
	must(t, iv.AddRealServer(web.Key, rs("10.244.0.5:8080", 2)))
	must(t, iv.SetConns(web.Key, netip.MustParseAddrPort("10.244.0.5:8080"), 3, 4))
	iv.ResetOps()
	lk.ResetOps()

	got, err := ReadKernel(iv, lk, "kube-ipvs0")
	must(t, err)
	busy := rs("10.244.0.5:8080", 2)
	busy.ActiveConns, busy.InactiveConns = 3, 4
	want := Snapshot{
		Dummy: "kube-ipvs0", DummyPresent: true,
		Addresses: addrs("10.96.0.10", "10.96.0.53"),
		VirtualServers: []KernelVS{
			{VirtualServer: web, RealServers: []ipvs.RealServer{busy, rs("10.244.1.6:8080", 1)}},
			{VirtualServer: dns, RealServers: []ipvs.RealServer{}},
		},
	}
	if diff := cmp.Diff(want, got, cmpAddr, cmpEmptySlices); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	if ops := append(iv.Ops(), lk.Ops()...); len(ops) != 0 {
		t.Errorf("ReadKernel wrote to the kernel: %q", ops)
	}
}

var cmpEmptySlices = cmp.FilterValues(func(a, b []ipvs.RealServer) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestReadKernelNoDummy(t *testing.T) {
	got, err := ReadKernel(ipvstest.NewFake(), linktest.NewFake(), "kube-ipvs0")
	must(t, err)
	if diff := cmp.Diff(Snapshot{Dummy: "kube-ipvs0"}, got, cmpAddr); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
}

func TestReadKernelErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		fail func(*ipvstest.Fake, *linktest.Fake)
		want string
	}{
		{"list addresses", func(_ *ipvstest.Fake, l *linktest.Fake) { l.FailNext(linktest.OpAddresses, boom) }, "list addresses of kube-ipvs0: boom"},
		{"list virtual servers", func(v *ipvstest.Fake, _ *linktest.Fake) { v.FailNext(ipvstest.OpVirtualServers, boom) }, "list virtual servers: boom"},
		{"list real servers", func(v *ipvstest.Fake, _ *linktest.Fake) { v.FailNext(ipvstest.OpRealServers, boom) }, "list real servers of TCP:10.96.0.10:80: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iv, lk := ipvstest.NewFake(), linktest.NewFake()
			must(t, lk.EnsureDummy("kube-ipvs0"))
			must(t, iv.AddVirtualServer(ipvs.VirtualServer{Key: key(ipvs.TCP, "10.96.0.10", 80), Scheduler: "rr"}))
			tt.fail(iv, lk)
			_, err := ReadKernel(iv, lk, "kube-ipvs0")
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// A virtual server deleted between the two listings is left out, not an error.
func TestReadKernelVirtualServerGone(t *testing.T) {
	iv, lk := ipvstest.NewFake(), linktest.NewFake()
	k := key(ipvs.TCP, "10.96.0.10", 80)
	must(t, iv.AddVirtualServer(ipvs.VirtualServer{Key: k, Scheduler: "rr"}))
	// The hook runs under the fake's lock: answer as the kernel would for a vanished one.
	iv.SetHook(func(op, _ string) error {
		if op == ipvstest.OpRealServers {
			return fmt.Errorf("virtual server %s: %w", k, ipvs.ErrNotFound)
		}
		return nil
	})
	got, err := ReadKernel(iv, lk, link.DefaultDummy)
	must(t, err)
	if len(got.VirtualServers) != 0 {
		t.Errorf("virtual servers = %v, want none", got.VirtualServers)
	}
}
