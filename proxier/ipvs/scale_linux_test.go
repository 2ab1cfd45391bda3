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
// server's weight among them, and listing all 10,000 (svcdump_linux.go; and through
// moby/ipvs for comparison). Run it once:
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
			start = time.Now() // the same through moby/ipvs, which the adapter used before 7 Dec
			svcs, err := v.(*linuxIPVS).h.GetServices()
			if err != nil || len(svcs) != n {
				b.Fatalf("moby listed %d virtual servers, %v", len(svcs), err)
			}
			b.ReportMetric(time.Since(start).Seconds()*1000, "list-10k-moby-ms")
			b.ReportMetric(add.Seconds()*1000, "add-10k-ms")
			b.ReportMetric(float64(add.Microseconds())/n, "µs/add")
			b.ReportMetric(float64(update.Microseconds()), "update-1-µs")
			b.ReportMetric(list.Seconds()*1000, "list-10k-ms")
		})
	}
}

// BenchmarkListRealServers reads the real servers of 1,000 virtual servers x 10, as a
// periodic resync does: through the adapter (dump_linux.go: one socket, reused buffers),
// all at once from /proc/net/ip_vs (table_linux.go), and through moby/ipvs's GetDestinations (a fresh 64 KiB buffer per read), which the
// adapter used before. Both must list the same. Allocated bytes are per read of all 1,000.
//
//	go test -run '^$' -bench ListRealServers -benchmem ./proxier/ipvs/   (in the guest)
func BenchmarkListRealServers(b *testing.B) {
	testenv.RequireVM(b)
	const n, per = 1000, 10
	testenv.InNetns(b, func() {
		v, err := New()
		if err != nil {
			b.Fatal(err)
		}
		defer v.(io.Closer).Close()
		keys := make([]Key, n)
		for i := range n {
			keys[i] = Key{Address: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), Protocol: TCP, Port: 80}
			if err := v.AddVirtualServer(VirtualServer{Key: keys[i], Scheduler: "rr"}); err != nil {
				b.Fatal(err)
			}
			for j := range per {
				rs := RealServer{Address: netip.AddrFrom4([4]byte{10, 244, byte(i >> 4), byte(i<<4 | j)}), Port: 8080, Weight: 1}
				if err := v.AddRealServer(keys[i], rs); err != nil {
					b.Fatal(err)
				}
			}
		}
		l := v.(*linuxIPVS)
		b.Run("adapter", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				for _, k := range keys {
					rss, err := l.RealServers(k)
					if err != nil || len(rss) != per {
						b.Fatalf("%s: %d real servers, %v", k, len(rss), err)
					}
				}
			}
		})
		b.Run("table", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				table, err := l.RealServerTable()
				if err != nil || len(table) != n {
					b.Fatalf("%d virtual servers in the table, %v", len(table), err)
				}
				for _, k := range keys {
					if len(table[k]) != per {
						b.Fatalf("%s: %d real servers in the table", k, len(table[k]))
					}
				}
			}
		})
		b.Run("moby", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				for _, k := range keys {
					s, err := keyService(k)
					if err != nil {
						b.Fatal(err)
					}
					ds, err := l.h.GetDestinations(s)
					if err != nil || len(ds) != per {
						b.Fatalf("%s: %d destinations, %v", k, len(ds), err)
					}
				}
			}
		})
	})
}
