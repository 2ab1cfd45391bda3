package ipvs

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// inKernel runs fn with the real adapter in a fresh network namespace of the test VM: IPVS
// tables are per namespace, so each test starts from an empty table.
func inKernel(t *testing.T, fn func(Interface)) {
	t.Helper()
	testenv.RequireVM(t)
	testenv.InNetns(t, func() {
		v, err := New()
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer v.(io.Closer).Close()
		fn(v)
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func key(addr string, p Protocol, port uint16) Key {
	return Key{Address: netip.MustParseAddr(addr), Protocol: p, Port: port}
}

func dest(addr string, port uint16, weight int) RealServer {
	return RealServer{Address: netip.MustParseAddr(addr), Port: port, Weight: int32(weight)}
}

func TestRoundTripAndErrors(t *testing.T) {
	inKernel(t, func(v Interface) {
		k := key("10.96.0.1", TCP, 80)
		vs := VirtualServer{Key: k, Scheduler: "rr"}
		must(t, v.AddVirtualServer(vs))
		if err := v.AddVirtualServer(vs); !errors.Is(err, ErrExist) {
			t.Errorf("duplicate add: %v, want ErrExist", err)
		}
		upd := VirtualServer{Key: k, Scheduler: "wlc", Persistent: true, Timeout: 10800}
		must(t, v.UpdateVirtualServer(upd))
		got, err := v.VirtualServers()
		must(t, err)
		if diff := cmp.Diff([]VirtualServer{upd}, got, addrs); diff != "" {
			t.Errorf("after update (-want +got):\n%s", diff)
		}

		a, b := dest("10.244.0.2", 8080, 1), dest("10.244.0.3", 8080, 0)
		must(t, v.AddRealServer(k, a))
		must(t, v.AddRealServer(k, b))
		if err := v.AddRealServer(k, a); !errors.Is(err, ErrExist) {
			t.Errorf("duplicate real server: %v, want ErrExist", err)
		}
		a.Weight = 5
		must(t, v.UpdateRealServer(k, a))
		rss, err := v.RealServers(k)
		must(t, err)
		sortRS(rss)
		if diff := cmp.Diff([]RealServer{a, b}, rss, addrs); diff != "" {
			t.Errorf("real servers (-want +got):\n%s", diff)
		}
		must(t, v.DeleteRealServer(k, b))
		absent := key("10.96.0.2", TCP, 80)
		for name, err := range map[string]error{
			"delete absent real server":   v.DeleteRealServer(k, b),
			"update absent real server":   v.UpdateRealServer(k, b),
			"update absent virtual":       v.UpdateVirtualServer(VirtualServer{Key: absent, Scheduler: "rr"}),
			"delete absent virtual":       v.DeleteVirtualServer(absent),
			"add real to absent virtual":  v.AddRealServer(absent, a),
			"delete real of absent":       v.DeleteRealServer(absent, a),
			"list real servers of absent": second(v.RealServers(absent)),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", name, err)
			}
		}
		if err := v.AddVirtualServer(VirtualServer{Key: absent, Scheduler: "nosuch"}); err == nil || errors.Is(err, ErrNotFound) || !errors.Is(err, unix.ENOENT) {
			t.Errorf("unknown scheduler: %v, want ENOENT that is not ErrNotFound", err)
		}
		if err := v.AddRealServer(k, dest("fd00::2", 80, 1)); err == nil {
			t.Errorf("mixed-family real server accepted")
		}

		// Deleting a virtual server drops its real servers.
		must(t, v.DeleteVirtualServer(k))
		must(t, v.AddVirtualServer(vs))
		if rss, err := v.RealServers(k); err != nil || len(rss) != 0 {
			t.Errorf("re-added virtual server: %v, %v; want no real servers", rss, err)
		}
		must(t, v.DeleteVirtualServer(k))
		if got, err := v.VirtualServers(); err != nil || len(got) != 0 {
			t.Errorf("table not empty at the end: %v, %v", got, err)
		}
	})
}

func second[T any](_ T, err error) error { return err }

func sortRS(rss []RealServer) {
	slices.SortFunc(rss, func(a, b RealServer) int { return a.AddrPort().Compare(b.AddrPort()) })
}

// TestFamiliesProtocolsPersistence programs every protocol in both families, with and
// without persistence, and reads all of it back.
func TestFamiliesProtocolsPersistence(t *testing.T) {
	inKernel(t, func(v Interface) {
		type entry struct {
			VS VirtualServer
			RS RealServer
		}
		var want []entry
		for _, fam := range []struct{ vip, rip string }{{"10.96.0.10", "10.244.0.5"}, {"fd00::10", "fd00:244::5"}} {
			for i, p := range []Protocol{TCP, UDP, SCTP} {
				vs := VirtualServer{Key: key(fam.vip, p, 53), Scheduler: "rr"}
				if i != 1 {
					vs.Persistent, vs.Timeout = true, uint32(60*(i+1))
				}
				want = append(want, entry{vs, dest(fam.rip, 5353, 2)})
			}
		}
		for _, e := range want {
			must(t, v.AddVirtualServer(e.VS))
			must(t, v.AddRealServer(e.VS.Key, e.RS))
		}
		got, err := v.VirtualServers()
		must(t, err)
		var gotEntries []entry
		for _, vs := range got {
			rss, err := v.RealServers(vs.Key)
			must(t, err)
			if len(rss) != 1 {
				t.Fatalf("%s has %d real servers", vs, len(rss))
			}
			gotEntries = append(gotEntries, entry{vs, rss[0]})
		}
		if diff := cmp.Diff(want, gotEntries, addrs, cmpopts.SortSlices(func(a, b entry) bool { return compareKeys(a.VS.Key, b.VS.Key) < 0 })); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		// Dropping persistence reads back as no persistence and no timeout.
		plain := VirtualServer{Key: want[0].VS.Key, Scheduler: "sh"}
		must(t, v.UpdateVirtualServer(plain))
		got, err = v.VirtualServers()
		must(t, err)
		found := false
		for _, vs := range got {
			if vs.Key == plain.Key {
				found = true
				if diff := cmp.Diff(plain, vs, addrs); diff != "" {
					t.Errorf("after dropping persistence (-want +got):\n%s", diff)
				}
			}
		}
		if !found {
			t.Errorf("%s vanished", plain.Key)
		}
	})
}

// TestSchedulers adds one virtual server per scheduler the project supports; the kernel loads
// each ip_vs_<name> module on demand.
func TestSchedulers(t *testing.T) {
	inKernel(t, func(v Interface) {
		for i, s := range []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"} {
			vs := VirtualServer{Key: key("10.96.1.1", TCP, uint16(1000+i)), Scheduler: s}
			if err := v.AddVirtualServer(vs); err != nil {
				t.Errorf("scheduler %s: %v", s, err)
				continue
			}
			must(t, v.AddRealServer(vs.Key, dest("10.244.1.1", 80, 1)))
		}
		got, err := v.VirtualServers()
		must(t, err)
		for _, vs := range got {
			if want := []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"}[vs.Port-1000]; vs.Scheduler != want {
				t.Errorf("%s reads back scheduler %q, want %q", vs.Key, vs.Scheduler, want)
			}
		}
		if len(got) != 11 {
			t.Errorf("%d virtual servers, want 11", len(got))
		}
	})
}

// TestActiveConnsIsRead opens a TCP connection through a virtual server whose real server is
// a local listener and polls until the kernel counts it as active.
func TestActiveConnsIsRead(t *testing.T) {
	inKernel(t, func(v Interface) {
		vip := netip.MustParseAddr("10.96.2.1")
		lo, err := netlink.LinkByName("lo")
		must(t, err)
		must(t, netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)}}))
		ln, err := net.Listen("tcp", "10.96.2.1:8080")
		must(t, err)
		defer ln.Close()
		done := make(chan struct{})
		defer close(done)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			<-done
			c.Close()
		}()
		k := Key{Address: vip, Protocol: TCP, Port: 80}
		must(t, v.AddVirtualServer(VirtualServer{Key: k, Scheduler: "rr"}))
		must(t, v.AddRealServer(k, RealServer{Address: vip, Port: 8080, Weight: 1}))

		c, err := net.DialTimeout("tcp", "10.96.2.1:80", 10*time.Second)
		must(t, err)
		defer c.Close()
		if last, ok := pollConns(t, v, k, 1, 0); !ok {
			t.Errorf("the open connection was never counted as active: %+v", last)
		}
		// Closed by the client, the connection leaves the established state: inactive.
		must(t, c.Close())
		if last, ok := pollConns(t, v, k, 0, 1); !ok {
			t.Errorf("the closed connection was never counted as inactive: %+v", last)
		}
	})
}

// pollConns reads k's only real server until its counters are active and inactive.
func pollConns(t *testing.T, v Interface, k Key, active, inactive int) ([]RealServer, bool) {
	t.Helper()
	var last []RealServer
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		last, err = v.RealServers(k)
		must(t, err)
		if len(last) == 1 && int(last[0].ActiveConns) == active && int(last[0].InactiveConns) == inactive {
			return last, true
		}
	}
	return last, false
}

// TestConcurrentUse shares one adapter between goroutines on other threads: the socket stays
// in the namespace it was opened in, and the adapter serialises requests.
func TestConcurrentUse(t *testing.T) {
	inKernel(t, func(v Interface) {
		k := key("fd00::20", TCP, 443)
		must(t, v.AddVirtualServer(VirtualServer{Key: k, Scheduler: "wrr"}))
		errs := make(chan error, 8)
		for g := range 8 {
			go func() {
				var err error
				for i := range 10 {
					addr := netip.AddrFrom16([16]byte{0xfd, 0, 2, 0x44, 14: byte(g), 15: byte(i)})
					if err = v.AddRealServer(k, RealServer{Address: addr, Port: 443, Weight: 1}); err != nil {
						break
					}
					if _, err = v.RealServers(k); err != nil {
						break
					}
				}
				errs <- err
			}()
		}
		for range 8 {
			must(t, <-errs)
		}
		rss, err := v.RealServers(k)
		must(t, err)
		if len(rss) != 80 {
			t.Errorf("%d real servers, want 80", len(rss))
		}
	})
}

func compareKeys(a, b Key) int {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Protocol), string(b.Protocol)); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

// TestStatsAreRead checks VirtualServerStats against the kernel's counters: one connection
// through a virtual server counts one connection and the packets and bytes it carried.
func TestStatsAreRead(t *testing.T) {
	inKernel(t, func(v Interface) {
		vip := netip.MustParseAddr("10.96.3.1")
		lo, err := netlink.LinkByName("lo")
		must(t, err)
		must(t, netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(32, 32)}}))
		ln, err := net.Listen("tcp", "10.96.3.1:8080")
		must(t, err)
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = io.Copy(c, c) // echo until the client closes
		}()
		k := Key{Address: vip, Protocol: TCP, Port: 80}
		must(t, v.AddVirtualServer(VirtualServer{Key: k, Scheduler: "rr"}))
		must(t, v.AddRealServer(k, RealServer{Address: vip, Port: 8080, Weight: 1}))
		other := Key{Address: vip, Protocol: UDP, Port: 53}
		must(t, v.AddVirtualServer(VirtualServer{Key: other, Scheduler: "rr"}))

		c, err := net.DialTimeout("tcp", "10.96.3.1:80", 10*time.Second)
		must(t, err)
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		must(t, err)
		buf := make([]byte, 5)
		_, err = io.ReadFull(c, buf)
		must(t, err)

		sr, ok := v.(StatsReader)
		if !ok {
			t.Fatal("the Linux adapter does not implement StatsReader")
		}
		var last map[Key]Stats
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			last, err = sr.VirtualServerStats()
			must(t, err)
			if s := last[k]; s.Connections == 1 && s.PacketsIn >= 2 && s.BytesIn >= 5 && s.PacketsOut >= 2 && s.BytesOut >= 5 {
				break
			}
		}
		if s := last[k]; s.Connections != 1 || s.PacketsIn < 2 || s.BytesIn < 5 || s.PacketsOut < 2 || s.BytesOut < 5 {
			t.Errorf("counters of %s: %+v, want 1 connection and its packets and bytes both ways", k, s)
		}
		if s, ok := last[other]; !ok || s != (Stats{}) {
			t.Errorf("counters of the idle %s: %+v (present %v), want zero", other, s, ok)
		}
	})
}
