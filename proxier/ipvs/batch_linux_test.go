package ipvs

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubevs/kubevs/internal/testenv"
)

// TestAddRealServersInKernel: one batch of adds, with a real server already there (the
// kernel refuses it mid-batch and goes on with the next) and a family mismatch refused before
// sending; each gets its own outcome, the others are added.
// A batch to an absent virtual server fails each with ErrNotFound. More than maxBatch go in
// several sends.
func TestAddRealServersInKernel(t *testing.T) {
	inKernel(t, func(v Interface) {
		k := key("10.96.0.1", TCP, 80)
		must(t, v.AddVirtualServer(VirtualServer{Key: k, Scheduler: "rr"}))
		must(t, v.AddRealServer(k, dest("10.244.0.2", 8080, 1)))
		b := v.(RealServerAdder)
		rss := []RealServer{
			dest("10.244.0.1", 8080, 1),
			dest("10.244.0.2", 8080, 3), // there already
			dest("fd00::2", 8080, 1),    // another family
			dest("10.244.0.4", 8080, 0),
		}
		errs := b.AddRealServers(k, rss)
		if errs[0] != nil || !errors.Is(errs[1], ErrExist) || errs[2] == nil || errs[3] != nil {
			t.Fatalf("errs = %v", errs)
		}
		got, err := v.RealServers(k)
		must(t, err)
		sortRS(got)
		if want := []RealServer{dest("10.244.0.1", 8080, 1), dest("10.244.0.2", 8080, 1), dest("10.244.0.4", 8080, 0)}; !cmp.Equal(want, got, addrs) {
			t.Errorf("real servers after the batch: %v, want %v", got, want)
		}
		for _, err := range b.AddRealServers(key("10.96.0.99", TCP, 80), rss[:2]) {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("add to an absent virtual server: %v, want ErrNotFound", err)
			}
		}
		many := make([]RealServer, 3*maxBatch+5)
		for i := range many {
			many[i] = RealServer{Address: netip.AddrFrom4([4]byte{10, 245, byte(i >> 8), byte(i)}), Port: 80, Weight: 1}
		}
		for i, err := range b.AddRealServers(k, many) {
			if err != nil {
				t.Fatalf("add %d of %d: %v", i, len(many), err)
			}
		}
		got, err = v.RealServers(k)
		must(t, err)
		if len(got) != 3+len(many) {
			t.Errorf("%d real servers, want %d", len(got), 3+len(many))
		}
	})
}

// BenchmarkAddRealServers adds the 10 real servers of each of 1,000 virtual servers (a cold
// sync's adds), batched per virtual server and one by one, in the test VM.
//
//	go test -run '^$' -bench AddRealServers -benchtime 1x ./proxier/ipvs/   (in the guest)
func BenchmarkAddRealServers(b *testing.B) {
	testenv.RequireVM(b)
	const n, per = 1000, 10
	for _, batched := range []bool{true, false} {
		b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
			for range b.N {
				testenv.InNetns(b, func() {
					v, err := New()
					if err != nil {
						b.Fatal(err)
					}
					defer v.(io.Closer).Close()
					keys := make([]Key, n)
					for i := range keys {
						keys[i] = Key{Address: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), Protocol: TCP, Port: 80}
						if err := v.AddVirtualServer(VirtualServer{Key: keys[i], Scheduler: "rr"}); err != nil {
							b.Fatal(err)
						}
					}
					start := time.Now()
					for i, k := range keys {
						rss := make([]RealServer, per)
						for j := range rss {
							rss[j] = RealServer{Address: netip.AddrFrom4([4]byte{10, 244, byte(i >> 4), byte(i<<4 | j)}), Port: 8080, Weight: 1}
						}
						if batched {
							for _, err := range v.(RealServerAdder).AddRealServers(k, rss) {
								if err != nil {
									b.Fatal(err)
								}
							}
							continue
						}
						for _, rs := range rss {
							if err := v.AddRealServer(k, rs); err != nil {
								b.Fatal(err)
							}
						}
					}
					b.ReportMetric(float64(time.Since(start).Microseconds())/(n*per), "µs/add")
				})
			}
		})
	}
}
