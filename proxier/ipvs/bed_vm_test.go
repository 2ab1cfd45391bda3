package ipvs

// The bed of the tests that watch IPVS itself on the VM's kernel, without kubevs: a director
// namespace that holds the virtual servers, backends and clients each in their own namespace,
// linked to the director by veth pairs, and the director's connection table as
// /proc/net/ip_vs_conn shows it.

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/internal/testenv"
)

// directorBed is three network namespaces: director (IPVS, VIPs on lo, forwarding), backends
// (10.0.1.2-4, each answering its own address on TCP :8080 and UDP :8053) and clients
// (10.0.2.2-5 on 10.0.2.0/24). Tests add their virtual servers through ipvs, which works in
// the director's namespace.
type directorBed struct {
	director, backends, clients ns.NetNS
	ipvs                        Interface
	backendAddrs                []netip.Addr
}

func newDirectorBed(t *testing.T) *directorBed {
	b := &directorBed{director: testenv.NewNetns(t), backends: testenv.NewNetns(t), clients: testenv.NewNetns(t)}
	b.wire(t, "vs-be", b.backends, "10.0.1.1/24", "10.0.1.2/24", "10.0.1.3/24", "10.0.1.4/24")
	b.wire(t, "vs-cl", b.clients, "10.0.2.1/24", "10.0.2.2/24", "10.0.2.3/24", "10.0.2.4/24", "10.0.2.5/24")
	b.setSysctl(t, "net/ipv4/ip_forward", "1")
	b.in(t, b.director, func() error {
		v, err := New()
		b.ipvs = v
		return err
	})
	t.Cleanup(func() { _ = b.ipvs.(io.Closer).Close() })
	for _, a := range []string{"10.0.1.2", "10.0.1.3", "10.0.1.4"} {
		addr := netip.MustParseAddr(a)
		b.backendAddrs = append(b.backendAddrs, addr)
		var ln net.Listener
		b.in(t, b.backends, func() (err error) {
			ln, err = net.Listen("tcp", net.JoinHostPort(a, "8080"))
			return err
		})
		t.Cleanup(func() { _ = ln.Close() })
		go serveAddress(ln, a)
		var pc net.PacketConn
		b.in(t, b.backends, func() (err error) {
			pc, err = net.ListenPacket("udp", net.JoinHostPort(a, "8053"))
			return err
		})
		t.Cleanup(func() { _ = pc.Close() })
		go answerAddress(pc, a)
	}
	return b
}

// answerAddress answers each datagram with the server's address.
func answerAddress(pc net.PacketConn, addr string) {
	buf := make([]byte, 512)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo([]byte(addr+"\n"), from)
	}
}

// serveAddress answers each connection with the server's address, then waits for the client
// to close and closes too.
func serveAddress(ln net.Listener, addr string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if _, err := io.WriteString(c, addr+"\n"); err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

// in runs fn in n, failing the test on error.
func (b *directorBed) in(t *testing.T, n ns.NetNS, fn func() error) {
	t.Helper()
	if err := n.Do(func(ns.NetNS) error { return fn() }); err != nil {
		t.Fatal(err)
	}
}

// wire links the director to peer with a veth pair: the director's end gets local, the peer's
// end the other addresses and a default route through local.
func (b *directorBed) wire(t *testing.T, name string, peer ns.NetNS, local string, addrs ...string) {
	t.Helper()
	gw := netip.MustParsePrefix(local).Addr()
	b.in(t, b.director, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "-p"}); err != nil {
			return fmt.Errorf("add veth %s: %w", name, err)
		}
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		if err := addAddrUp(l, local); err != nil {
			return err
		}
		p, err := netlink.LinkByName(name + "-p")
		if err != nil {
			return err
		}
		return netlink.LinkSetNsFd(p, int(peer.Fd()))
	})
	b.in(t, peer, func() error {
		l, err := netlink.LinkByName(name + "-p")
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if err := addAddrUp(l, a); err != nil {
				return err
			}
		}
		return netlink.RouteAdd(&netlink.Route{Gw: gw.AsSlice()})
	})
}

func addAddrUp(l netlink.Link, cidr string) error {
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", cidr, l.Attrs().Name, err)
	}
	return netlink.LinkSetUp(l)
}

// setSysctl writes a sysctl of the director's namespace (name slashed, e.g.
// "net/ipv4/vs/conntrack"): those of net/ipv4 and of IPVS are per namespace.
func (b *directorBed) setSysctl(t *testing.T, name, value string) {
	t.Helper()
	b.in(t, b.director, func() error {
		// /proc/sys/net follows the writing thread's namespace, the director's here.
		if err := os.WriteFile("/proc/sys/"+name, []byte(value), 0o644); err != nil {
			return fmt.Errorf("set sysctl %s=%s in the director: %w", name, value, err)
		}
		return nil
	})
}

// addVIP puts vip on the director's loopback, so the director accepts packets for it.
func (b *directorBed) addVIP(t *testing.T, vip netip.Addr) {
	t.Helper()
	b.in(t, b.director, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: netlink.NewIPNet(vip.AsSlice())}); err != nil {
			return fmt.Errorf("add %s to the director's lo: %w", vip, err)
		}
		return nil
	})
}

// conns reads the director's connection table, entries of client only.
func (b *directorBed) conns(t *testing.T, client netip.Addr) []ipvsConn {
	t.Helper()
	var all []ipvsConn
	b.in(t, b.director, func() error {
		// /proc/self/net would be the main thread's namespace; this thread is the director's.
		data, err := os.ReadFile("/proc/thread-self/net/ip_vs_conn")
		if err != nil {
			return err
		}
		all, err = parseIPVSConns(string(data))
		return err
	})
	var mine []ipvsConn
	for _, c := range all {
		if c.Client.Addr() == client {
			mine = append(mine, c)
		}
	}
	return mine
}

// ipvsConn is one line of /proc/net/ip_vs_conn.
type ipvsConn struct {
	Proto         string
	Client        netip.AddrPort
	Virtual       netip.AddrPort
	Dest          netip.AddrPort
	State         string
	ExpiresInSecs int
}

// Template reports whether the entry is a persistence template (no client port).
func (c ipvsConn) Template() bool { return c.Client.Port() == 0 }

func (c ipvsConn) String() string {
	return fmt.Sprintf("%s %s -> %s -> %s %s %ds", c.Proto, c.Client, c.Virtual, c.Dest, c.State, c.ExpiresInSecs)
}

// parseIPVSConns parses /proc/net/ip_vs_conn (IPv4 entries; IPv6 ones are skipped).
func parseIPVSConns(text string) ([]ipvsConn, error) {
	var out []ipvsConn
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || f[0] == "Pro" || len(f[1]) != 8 {
			continue
		}
		var addrs [3]netip.AddrPort
		for i := range addrs {
			a, err := parseHexAddrPort(f[1+2*i], f[2+2*i])
			if err != nil {
				return nil, fmt.Errorf("parse ip_vs_conn line %q: %w", sc.Text(), err)
			}
			addrs[i] = a
		}
		exp, err := strconv.Atoi(f[8])
		if err != nil {
			return nil, fmt.Errorf("parse expiry of ip_vs_conn line %q: %w", sc.Text(), err)
		}
		out = append(out, ipvsConn{Proto: f[0], Client: addrs[0], Virtual: addrs[1], Dest: addrs[2], State: f[7], ExpiresInSecs: exp})
	}
	return out, sc.Err()
}

func parseHexAddrPort(addr, port string) (netip.AddrPort, error) {
	a, err := hex.DecodeString(addr)
	if err != nil || len(a) != 4 {
		return netip.AddrPort{}, fmt.Errorf("address %q", addr)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", port, err)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a)), uint16(p)), nil
}

func TestParseIPVSConns(t *testing.T) {
	const text = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A000202 0000 0A600901 0050 0A000103 1F90 NONE             58
TCP 0A000202 9C4E 0A600901 0050 0A000103 1F90 CLOSE             7
`
	got, err := parseIPVSConns(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"TCP 10.0.2.2:0 -> 10.96.9.1:80 -> 10.0.1.3:8080 NONE 58s",
		"TCP 10.0.2.2:40014 -> 10.96.9.1:80 -> 10.0.1.3:8080 CLOSE 7s",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d = %q, want %q", i, got[i], want[i])
		}
	}
	if !got[0].Template() || got[1].Template() {
		t.Errorf("Template() = %v, %v; want true, false", got[0].Template(), got[1].Template())
	}
}
