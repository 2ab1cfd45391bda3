//go:build linux

package conntrack

import (
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// flow is "proto origSrc:port origDst:port replySrc:port replyDst:port".
type flow struct {
	proto                string
	src, dst, rsrc, rdst netip.AddrPort
}

func (f flow) insert(t *testing.T) {
	t.Helper()
	args := []string{"-I", "-p", f.proto,
		"-s", f.src.Addr().String(), "-d", f.dst.Addr().String(),
		"--sport", port(f.src), "--dport", port(f.dst),
		"-r", f.rsrc.Addr().String(), "-q", f.rdst.Addr().String(),
		"--reply-port-src", port(f.rsrc), "--reply-port-dst", port(f.rdst), "-t", "300"}
	switch f.proto {
	case "tcp":
		args = append(args, "--state", "ESTABLISHED")
	case "sctp":
		args = append(args, "--state", "ESTABLISHED", "--orig-vtag", "1", "--reply-vtag", "2")
	}
	if out, err := exec.Command("conntrack", args...).CombinedOutput(); err != nil {
		t.Fatalf("conntrack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func port(a netip.AddrPort) string { return strconv.Itoa(int(a.Port())) }

// listed returns the flows the conntrack CLI lists, as "proto src dst sport dport" keys.
func listed(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, fam := range []string{"ipv4", "ipv6"} {
		b, err := exec.Command("conntrack", "-L", "-f", fam).Output()
		if err != nil {
			t.Fatalf("conntrack -L: %v", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			f := strings.Fields(line)
			var keep []string
			for _, w := range f {
				if strings.HasPrefix(w, "src=") || strings.HasPrefix(w, "dst=") || strings.HasPrefix(w, "sport=") || strings.HasPrefix(w, "dport=") {
					keep = append(keep, w)
				}
			}
			out = append(out, f[0]+" "+strings.Join(keep, " "))
		}
	}
	slices.Sort(out)
	return out
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestLinuxDeletes(t *testing.T) {
	// A client 10.0.0.1 talks to Services; IPVS sent the flows to endpoints (reply sources).
	dns := flow{"udp", ap("10.0.0.1:1000"), ap("10.96.0.10:53"), ap("10.244.0.5:53"), ap("10.0.0.1:1000")}
	dns2 := flow{"udp", ap("10.0.0.2:1000"), ap("10.96.0.10:53"), ap("10.244.0.6:53"), ap("10.0.0.2:1000")}
	dnsTCP := flow{"tcp", ap("10.0.0.1:1001"), ap("10.96.0.10:53"), ap("10.244.0.5:53"), ap("10.0.0.1:1001")}
	api := flow{"tcp", ap("10.0.0.1:1002"), ap("10.96.0.1:443"), ap("192.0.2.1:6443"), ap("10.0.0.1:1002")}
	other := flow{"udp", ap("10.0.0.1:1003"), ap("10.96.0.11:53"), ap("10.244.0.5:5353"), ap("10.0.0.1:1003")}
	pod := flow{"udp", ap("10.244.0.7:4000"), ap("10.0.0.9:9"), ap("10.0.0.9:9"), ap("10.244.0.7:4000")}
	dns6 := flow{"udp", ap("[fd00::1]:1000"), ap("[fd00:96::a]:53"), ap("[fd00:244::5]:53"), ap("[fd00::1]:1000")}
	dns6b := flow{"udp", ap("[fd00::2]:1000"), ap("[fd00:96::a]:53"), ap("[fd00:244::6]:53"), ap("[fd00::2]:1000")}
	sctp := flow{"sctp", ap("10.0.0.1:1004"), ap("10.96.0.12:9"), ap("10.244.0.8:9"), ap("10.0.0.1:1004")}
	// A flow that reached the VIP while nothing answered for it: no NAT, the reply comes from
	// the VIP.
	dead := flow{"udp", ap("10.0.0.3:1000"), ap("10.96.0.10:53"), ap("10.96.0.10:53"), ap("10.0.0.3:1000")}
	unserved := func(vip string, keep ...string) func(Linux) (int, error) {
		var k []netip.AddrPort
		for _, s := range keep {
			k = append(k, ap(s))
		}
		return func(l Linux) (int, error) {
			return l.Delete([]Filter{{Match: Unserved, Proto: ipvs.UDP, Addr: ap(vip).Addr(), Port: ap(vip).Port(), Keep: KeepList(k)}})
		}
	}

	key := func(f flow) string {
		return f.proto + " src=" + f.src.Addr().String() + " dst=" + f.dst.Addr().String() + " sport=" + port(f.src) + " dport=" + port(f.dst) +
			" src=" + f.rsrc.Addr().String() + " dst=" + f.rdst.Addr().String() + " sport=" + port(f.rsrc) + " dport=" + port(f.rdst)
	}
	tests := []struct {
		name   string
		delete func(Linux) (int, error)
		gone   []flow
	}{
		{"orig dst UDP", func(l Linux) (int, error) { return l.DeleteByOrigDst(ipvs.UDP, netip.MustParseAddr("10.96.0.10"), 53) }, []flow{dns, dns2, dead}},
		{"unserved keeps the flows of the kept endpoints", unserved("10.96.0.10:53", "10.244.0.5:53", "10.244.0.9:53"), []flow{dns2, dead}},
		{"unserved keeping none", unserved("10.96.0.10:53"), []flow{dns, dns2, dead}},
		{"unserved IPv6", unserved("[fd00:96::a]:53", "[fd00:244::5]:53"), []flow{dns6b}},
		{"orig dst TCP", func(l Linux) (int, error) { return l.DeleteByOrigDst(ipvs.TCP, netip.MustParseAddr("10.96.0.1"), 443) }, []flow{api}},
		{"orig dst SCTP", func(l Linux) (int, error) { return l.DeleteByOrigDst(ipvs.SCTP, netip.MustParseAddr("10.96.0.12"), 9) }, []flow{sctp}},
		{"orig dst IPv6", func(l Linux) (int, error) { return l.DeleteByOrigDst(ipvs.UDP, netip.MustParseAddr("fd00:96::a"), 53) }, []flow{dns6, dns6b}},
		{"orig dst no match", func(l Linux) (int, error) { return l.DeleteByOrigDst(ipvs.UDP, netip.MustParseAddr("10.96.0.10"), 54) }, nil},
		{"reply src port", func(l Linux) (int, error) { return l.DeleteByReplySrc(ipvs.UDP, netip.MustParseAddr("10.244.0.5"), 53) }, []flow{dns}},
		{"reply src any port", func(l Linux) (int, error) { return l.DeleteByReplySrc(ipvs.UDP, netip.MustParseAddr("10.244.0.5"), 0) }, []flow{dns, other}},
		{"reply src IPv6", func(l Linux) (int, error) {
			return l.DeleteByReplySrc(ipvs.UDP, netip.MustParseAddr("fd00:244::6"), 53)
		}, []flow{dns6b}},
		{"addr any direction", func(l Linux) (int, error) { return l.DeleteByAddr(netip.MustParseAddr("10.244.0.5")) }, []flow{dns, dnsTCP, other}},
		{"addr as source", func(l Linux) (int, error) { return l.DeleteByAddr(netip.MustParseAddr("10.244.0.7")) }, []flow{pod}},
		{"addr IPv4-mapped", func(l Linux) (int, error) { return l.DeleteByAddr(netip.MustParseAddr("::ffff:10.244.0.7")) }, []flow{pod}},
		{"many filters of both families in one call", func(l Linux) (int, error) {
			return l.Delete([]Filter{
				{Match: ReplySrc, Proto: ipvs.UDP, Addr: netip.MustParseAddr("10.244.0.5"), Port: 53},
				{Match: Addr, Addr: netip.MustParseAddr("10.244.0.7")},
				{Match: OrigDst, Proto: ipvs.UDP, Addr: netip.MustParseAddr("fd00:96::a"), Port: 53},
				{Match: OrigDst, Proto: ipvs.SCTP, Addr: netip.MustParseAddr("10.96.0.12"), Port: 9},
				{Match: ReplySrc, Proto: ipvs.TCP, Addr: netip.MustParseAddr("10.244.9.9")}, // matches nothing
			})
		}, []flow{dns, pod, dns6, dns6b, sctp}},
		{"no filter", func(l Linux) (int, error) { return l.Delete(nil) }, nil},
	}
	all := []flow{dns, dns2, dnsTCP, api, other, pod, dns6, dns6b, sctp, dead}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.EnterNetns(t)
			for _, f := range all {
				f.insert(t)
			}
			var want []string
			for _, f := range all {
				if !slices.Contains(tt.gone, f) {
					want = append(want, key(f))
				}
			}
			slices.Sort(want)
			n, err := tt.delete(New())
			if err != nil {
				t.Fatal(err)
			}
			if n != len(tt.gone) {
				t.Errorf("deleted %d flows, want %d", n, len(tt.gone))
			}
			if diff := cmp.Diff(want, listed(t)); diff != "" {
				t.Errorf("flows left (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLinuxRejects(t *testing.T) {
	if _, err := New().DeleteByOrigDst("ICMP", netip.MustParseAddr("10.0.0.1"), 1); err == nil {
		t.Errorf("unknown protocol accepted")
	}
	if _, err := New().DeleteByAddr(netip.Addr{}); err == nil {
		t.Errorf("invalid address accepted")
	}
	if _, err := New().Delete([]Filter{{Match: Addr, Addr: netip.MustParseAddr("10.0.0.1")}, {Match: "nat", Addr: netip.MustParseAddr("10.0.0.1")}}); err == nil {
		t.Errorf("unknown match accepted")
	}
}

// TestLinuxRealFlow sends a UDP datagram to a "Service VIP" that an iptables DNAT rule sends
// to 127.0.0.1:5353, the way IPVS NAT rewrites a flow, so the kernel itself creates the entry
// (orig -> VIP, reply from the endpoint), and deletes it by its original destination and by
// its reply source.
func TestLinuxRealFlow(t *testing.T) {
	for _, by := range []string{"orig dst", "reply src", "addr"} {
		t.Run(by, func(t *testing.T) {
			testenv.EnterNetns(t)
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				t.Fatal(err)
			}
			vip := netip.MustParseAddr("10.96.0.10")
			if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: netlink.NewIPNet(vip.AsSlice())}); err != nil {
				t.Fatalf("add VIP to lo: %v", err)
			}
			if out, err := exec.Command("iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-d", vip.String(), "-p", "udp",
				"--dport", "53", "-j", "DNAT", "--to-destination", "127.0.0.1:5353").CombinedOutput(); err != nil {
				t.Fatalf("iptables DNAT: %v: %s", err, out)
			}
			conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, 53)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte("query")); err != nil {
				t.Fatal(err)
			}
			if got := listed(t); len(got) != 1 || !strings.Contains(got[0], "dst=10.96.0.10") || !strings.Contains(got[0], "src=127.0.0.1 dst=10.96.0.10 sport=5353") {
				t.Fatalf("kernel flows = %q, want one flow to the VIP answered by 127.0.0.1:5353", got)
			}
			var n int
			switch by {
			case "orig dst":
				n, err = New().DeleteByOrigDst(ipvs.UDP, vip, 53)
			case "reply src":
				n, err = New().DeleteByReplySrc(ipvs.UDP, netip.MustParseAddr("127.0.0.1"), 5353)
			case "addr":
				n, err = New().DeleteByAddr(netip.MustParseAddr("127.0.0.1"))
			}
			if err != nil || n != 1 {
				t.Fatalf("delete by %s = %d, %v; want 1 flow", by, n, err)
			}
			if got := listed(t); len(got) != 0 {
				t.Errorf("flows left: %q", got)
			}
		})
	}
}
