package ipvs

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

func sorted(rss []RealServer) []RealServer {
	rss = slices.Clone(rss)
	sortRS(rss)
	return rss
}

// TestRealServerTableMatchesDumps: the kernel's /proc/net/ip_vs, parsed, holds exactly
// what one netlink dump per virtual server gives, for IPv4 and IPv6, each protocol,
// persistence, weights of 0, connection counters and a virtual server without real
// servers; a firewall-mark service is left out.
func TestRealServerTableMatchesDumps(t *testing.T) {
	inKernel(t, func(v Interface) {
		type vsDests struct {
			vs    VirtualServer
			dests []RealServer
		}
		all := []vsDests{
			{VirtualServer{Key: key("10.96.0.1", TCP, 443), Scheduler: "rr"}, []RealServer{dest("10.244.0.2", 6443, 1), dest("10.244.0.3", 6443, 0)}},
			{VirtualServer{Key: key("10.96.0.10", UDP, 53), Scheduler: "rr", Persistent: true, Timeout: 10800}, []RealServer{dest("10.244.1.9", 53, 1)}},
			{VirtualServer{Key: key("10.96.0.11", SCTP, 2905), Scheduler: "sh"}, []RealServer{dest("10.244.1.10", 2905, 7)}},
			{VirtualServer{Key: key("10.96.0.12", TCP, 80), Scheduler: "rr"}, nil},
			{VirtualServer{Key: key("255.255.255.255", TCP, 65535), Scheduler: "rr"}, []RealServer{dest("0.0.0.1", 1, 65535)}},
			{VirtualServer{Key: key("fd00::a", TCP, 443), Scheduler: "wlc", Persistent: true, Timeout: 60}, []RealServer{dest("fd01::2", 8443, 1), dest("fd01::1:3", 8443, 2)}},
			{VirtualServer{Key: key("fd00:ffff::1", UDP, 53), Scheduler: "rr"}, []RealServer{dest("fd01::ffff:1", 53, 1)}},
		}
		for _, x := range all {
			must(t, v.AddVirtualServer(x.vs))
			for _, rs := range x.dests {
				must(t, v.AddRealServer(x.vs.Key, rs))
			}
		}
		l := v.(*linuxIPVS)
		fwm := &libipvs.Service{FWMark: 7, AddressFamily: unix.AF_INET, SchedName: "rr", Netmask: 0xFFFFFFFF}
		must(t, l.h.NewService(fwm))
		must(t, l.h.NewDestination(fwm, &libipvs.Destination{Address: net.ParseIP("10.244.9.9"), Port: 80, Weight: 1, AddressFamily: unix.AF_INET}))

		got, err := l.RealServerTable()
		if err != nil {
			t.Fatal(err)
		}
		if text, err := os.ReadFile(tablePath); err == nil {
			t.Logf("%s:\n%s", tablePath, text)
		}
		want := map[Key][]RealServer{}
		vss, err := v.VirtualServers()
		must(t, err)
		for _, vs := range vss {
			rss, err := v.RealServers(vs.Key)
			must(t, err)
			want[vs.Key] = sorted(rss)
		}
		for k := range got {
			got[k] = sorted(got[k])
		}
		if len(want) != len(all) {
			t.Fatalf("the netlink listing holds %d virtual servers, want %d", len(want), len(all))
		}
		if d := cmp.Diff(want, got, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{})); d != "" {
			t.Errorf("RealServerTable (-netlink dumps +table):\n%s", d)
		}
	})
}

// TestRealServerTableUnderChurn: while virtual servers are added and deleted beside it (so
// the kernel's seq_file walk restarts at shifted positions between reads), every virtual
// server the table holds is whole and right: a fixed set, never changed, is either left out
// (the caller then dumps it) or listed with exactly its real servers.
func TestRealServerTableUnderChurn(t *testing.T) {
	inKernel(t, func(v Interface) {
		const fixed, churn = 400, 200
		want := map[Key][]RealServer{}
		for i := range fixed {
			k := Key{Address: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), Protocol: TCP, Port: 80}
			must(t, v.AddVirtualServer(VirtualServer{Key: k, Scheduler: "rr"}))
			for j := range 3 {
				rs := RealServer{Address: netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)}), Port: uint16(8080 + j), Weight: int32(j)}
				must(t, v.AddRealServer(k, rs))
				want[k] = append(want[k], rs)
			}
		}
		// The churn runs on the same adapter: the table read must not hold up its writes.
		stop := make(chan struct{})
		var writes atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				writes.Add(1)
				k := Key{Address: netip.AddrFrom4([4]byte{10, 97, 0, byte(n % churn)}), Protocol: UDP, Port: 53}
				if n/churn%2 == 0 {
					_ = v.AddVirtualServer(VirtualServer{Key: k, Scheduler: "rr"})
				} else {
					_ = v.DeleteVirtualServer(k)
				}
			}
		}()
		l := v.(*linuxIPVS)
		missing, reads := 0, 10
		for range reads {
			got, err := l.RealServerTable()
			if err != nil {
				t.Fatal(err)
			}
			for k, w := range want {
				rss, ok := got[k]
				if !ok {
					missing++
					continue
				}
				if d := cmp.Diff(w, sorted(rss), cmpopts.EquateComparable(netip.Addr{})); d != "" {
					t.Fatalf("%s under churn (-want +got):\n%s", k, d)
				}
			}
		}
		close(stop)
		wg.Wait()
		t.Logf("%d reads of %d fixed virtual servers under churn (%d writes beside them): %d left out", reads, fixed, writes.Load(), missing)
		if writes.Load() < int64(reads) {
			t.Errorf("%d writes beside %d table reads: the reads hold up the writes", writes.Load(), reads)
		}
		if missing > reads*fixed/10 {
			t.Errorf("%d of %d left out: the table would save little", missing, reads*fixed)
		}
	})
}
