package status

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
)

// BenchmarkReadKernel reads a table of 1000 virtual servers with 4 real servers each from
// the VM's IPVS (one dump of the virtual servers, one per virtual server for its real
// servers, one for the dummy link's addresses), then compares it with the same wants.
// Run in the VM: kubevs-vm run --env KUBEVS_IN_VM=1 -- status.test -test.run '^$' -test.bench ReadKernel
func BenchmarkReadKernel(b *testing.B) {
	testenv.RequireVM(b)
	testenv.InNetns(b, func() {
		iv, lk := realAdapters(b)
		if err := lk.EnsureDummy(link.DefaultDummy); err != nil {
			b.Fatal(err)
		}
		var wants []Want
		for i := range 1000 {
			vip := netip.AddrFrom4([4]byte{10, 96, byte(i / 250), byte(1 + i%250)})
			if err := lk.AddAddress(link.DefaultDummy, vip); err != nil {
				b.Fatal(err)
			}
			w := Want{Type: "ClusterIP"}
			w.Service.Namespace, w.Service.Name = "bench", fmt.Sprintf("svc%d", i)
			w.State.VIPs = []netip.Addr{vip}
			v := ipvs.VirtualServer{Key: ipvs.Key{Address: vip, Protocol: ipvs.TCP, Port: 80}, Scheduler: "rr"}
			if err := iv.AddVirtualServer(v); err != nil {
				b.Fatal(err)
			}
			dv := desiredVS(v)
			for j := range 4 {
				r := ipvs.RealServer{Address: netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(1 + i%250)}), Port: uint16(8000 + j), Weight: 1}
				if err := iv.AddRealServer(v.Key, r); err != nil {
					b.Fatal(err)
				}
				dv.RealServers = append(dv.RealServers, desired.RealServerOf(r))
			}
			w.State.VirtualServers = append(w.State.VirtualServers, dv)
			wants = append(wants, w)
		}
		b.ResetTimer()
		for b.Loop() {
			snap, err := ReadKernel(iv, lk, link.DefaultDummy)
			if err != nil {
				b.Fatal(err)
			}
			if r := Compare(CompareOptions{}, wants, snap); len(r.Drift) != 0 {
				b.Fatalf("drift: %v", r.Drift[0])
			}
		}
	})
}
