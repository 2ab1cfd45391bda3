package ipvs

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/kubevs/kubevs/internal/testenv"
)

// BenchmarkScale10k measures the real adapter at the size of a large cluster, in a fresh
// namespace of the test VM: adding 10,000 virtual servers one by one, updating one real
// server's weight among them, and listing all 10,000. Run it once:
//
//	go test -run '^$' -bench Scale10k -benchtime 1x ./proxier/ipvs/   (in the guest)
func BenchmarkScale10k(b *testing.B) {
	testenv.RequireVM(b)
	const n = 10000
	for range b.N {
		testenv.InNetns(b, func() {
			v, err := New()
			if err != nil {
				b.Fatal(err)
			}
			defer v.(io.Closer).Close()

			start := time.Now()
			for i := range n {
				addr := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
				if err := v.AddVirtualServer(VirtualServer{Key: Key{Address: addr, Protocol: TCP, Port: 80}, Scheduler: "rr"}); err != nil {
					b.Fatal(err)
				}
			}
			add := time.Since(start)

			k := Key{Address: netip.AddrFrom4([4]byte{10, 96, 19, 136}), Protocol: TCP, Port: 80} // the 5,000th
			rs := RealServer{Address: netip.MustParseAddr("10.244.0.2"), Port: 8080, Weight: 1}
			if err := v.AddRealServer(k, rs); err != nil {
				b.Fatal(err)
			}
			rs.Weight = 0
			start = time.Now()
			if err := v.UpdateRealServer(k, rs); err != nil {
				b.Fatal(err)
			}
			update := time.Since(start)

			start = time.Now()
			all, err := v.VirtualServers()
			if err != nil {
				b.Fatal(err)
			}
			list := time.Since(start)
			if len(all) != n {
				b.Fatalf("listed %d virtual servers, want %d", len(all), n)
			}
			b.ReportMetric(add.Seconds()*1000, "add-10k-ms")
			b.ReportMetric(float64(add.Microseconds())/n, "µs/add")
			b.ReportMetric(float64(update.Microseconds()), "update-1-µs")
			b.ReportMetric(list.Seconds()*1000, "list-10k-ms")
		})
	}
}
