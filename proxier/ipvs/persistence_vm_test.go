package ipvs

// How long the kernel keeps a client's persistence template (ClientIP affinity) after its last
// connection, measured on the VM's kernel without kubevs: a director netns holds persistent
// virtual servers, three real servers listen in a backends netns, clients dial from a third.
//
// The kernel's rule (net/netfilter/ipvs): a template is created with the service's timeout and
// re-armed with its own timeout each time a new connection of the client uses it. When its
// timer fires while a connection it controls is still in the connection table (a closed TCP
// connection stays there CLOSE for 10 s after a reset, TIME_WAIT for 120 s after a FIN
// exchange), it is not removed: its timeout becomes 60 s, for good, and it is re-armed. So a
// template outlives its last connection by its timeout if the connection is gone by then, and
// otherwise goes at the first 60 s tick after the connection has gone. A UDP "connection" stays
// for the UDP timeout after its last datagram (300 s unless set, as ipvs.udpTimeout does).

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
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	libipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/internal/testenv"
)

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

// persistCase is one client of one persistent virtual server.
type persistCase struct {
	name    string
	timeout uint32 // the virtual server's persistence timeout, seconds
	udp     bool   // one UDP request and answer instead of a TCP connection
	reset   bool   // close with a reset (SO_LINGER 0) instead of a FIN exchange
	state   string // the closed connection's IPVS state
	// The template must go within [min, max] after the connection's dial began.
	min, max time.Duration
}

func TestPersistenceTemplateLifetime(t *testing.T) {
	testenv.RequireVM(t)
	bed := newPersistBed(t)
	// Slack above the rule's figure: timer wheel rounding (up to 2 s for timers of 16-130 s
	// at HZ=250), the 250 ms poll, and the emulated guest.
	const slack = 6 * time.Second
	cases := []persistCase{
		// The connection (CLOSE, 10 s) is gone when the 20 s template fires: it goes at once.
		{name: "reset/timeout-20", timeout: 20, reset: true, state: "CLOSE", min: 20 * time.Second, max: 20*time.Second + slack},
		// The connection is still CLOSE when the 5 s template fires: re-armed once, 60 s.
		{name: "reset/timeout-5", timeout: 5, reset: true, state: "CLOSE", min: 65 * time.Second, max: 65*time.Second + slack},
		// TIME_WAIT (120 s) outlives the 5 s and the 65 s firing: gone at the 125 s one.
		{name: "fin/timeout-5", timeout: 5, reset: false, state: "TIME_WAIT", min: 125 * time.Second, max: 125*time.Second + slack},
		// The UDP entry lives udpTimeout (8 s here) after the answer: re-armed once, 60 s.
		{name: "udp/timeout-5", timeout: 5, udp: true, state: "UDP", min: 65 * time.Second, max: 65*time.Second + slack},
	}
	for i, c := range cases {
		vip := netip.AddrFrom4([4]byte{10, 96, 9, byte(1 + i)})
		client := netip.AddrFrom4([4]byte{10, 0, 2, byte(2 + i)})
		bed.addVirtualServer(t, vip, c.udp, c.timeout)
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bed.checkLifetime(t, c, vip, client)
		})
	}
}

// persistBed is three network namespaces: director (IPVS, VIPs on lo, forwarding), backends
// (10.0.1.2-4, each answering its own address on TCP :8080 and UDP :8053) and clients
// (10.0.2.0/24). The director's IPVS UDP timeout is persistUDPTimeout.
type persistBed struct {
	director, backends, clients ns.NetNS
	ipvs                        Interface
	backendAddrs                []netip.Addr
}

func newPersistBed(t *testing.T) *persistBed {
	b := &persistBed{director: testenv.NewNetns(t), backends: testenv.NewNetns(t), clients: testenv.NewNetns(t)}
	b.wire(t, "vs-be", b.backends, "10.0.1.1/24", "10.0.1.2/24", "10.0.1.3/24", "10.0.1.4/24")
	b.wire(t, "vs-cl", b.clients, "10.0.2.1/24", "10.0.2.2/24", "10.0.2.3/24", "10.0.2.4/24", "10.0.2.5/24")
	b.in(t, b.director, func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			return err
		}
		// What the proxier does for ipvs.udpTimeout.
		h, err := libipvs.New("")
		if err != nil {
			return err
		}
		defer h.Close()
		if err := h.SetConfig(&libipvs.Config{TimeoutUDP: persistUDPTimeout}); err != nil {
			return fmt.Errorf("set the UDP timeout: %w", err)
		}
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

// persistUDPTimeout is the director's IPVS UDP timeout.
const persistUDPTimeout = 8 * time.Second

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
func (b *persistBed) in(t *testing.T, n ns.NetNS, fn func() error) {
	t.Helper()
	if err := n.Do(func(ns.NetNS) error { return fn() }); err != nil {
		t.Fatal(err)
	}
}

// wire links the director to peer with a veth pair: the director's end gets local, the peer's
// end the other addresses and a default route through local.
func (b *persistBed) wire(t *testing.T, name string, peer ns.NetNS, local string, addrs ...string) {
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

// addVirtualServer adds TCP vip:80 over every backend's :8080 (or UDP vip:53 over :8053),
// round robin, persistent for timeout seconds, and puts vip on the director's loopback.
func (b *persistBed) addVirtualServer(t *testing.T, vip netip.Addr, udp bool, timeout uint32) {
	t.Helper()
	b.in(t, b.director, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.AddrAdd(lo, &netlink.Addr{IPNet: netlink.NewIPNet(vip.AsSlice())})
	})
	k, port := Key{Address: vip, Protocol: TCP, Port: 80}, uint16(8080)
	if udp {
		k, port = Key{Address: vip, Protocol: UDP, Port: 53}, 8053
	}
	if err := b.ipvs.AddVirtualServer(VirtualServer{Key: k, Scheduler: "rr", Persistent: true, Timeout: timeout}); err != nil {
		t.Fatal(err)
	}
	for _, a := range b.backendAddrs {
		if err := b.ipvs.AddRealServer(k, RealServer{Address: a, Port: port, Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

// request connects from client to vip:80, reads the answering backend and closes (or sends
// one datagram to vip:53 and reads the answer).
func (b *persistBed) request(t *testing.T, client, vip netip.Addr, udp, reset bool) string {
	t.Helper()
	var c net.Conn
	b.in(t, b.clients, func() (err error) {
		if udp {
			c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(client, 0)), net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, 53)))
			return err
		}
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(client, 0)), Timeout: 10 * time.Second}
		c, err = d.Dial("tcp", net.JoinHostPort(vip.String(), "80"))
		return err
	})
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if udp {
		if _, err := c.Write([]byte("which\n")); err != nil {
			t.Fatalf("send from %s to %s: %v", client, vip, err)
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s via %s: %v", client, vip, err)
	}
	if tc, ok := c.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	return strings.TrimSpace(line)
}

// conns reads the director's connection table, entries of client only.
func (b *persistBed) conns(t *testing.T, client netip.Addr) []ipvsConn {
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

// checkLifetime makes one connection, closes it as c says, and polls the connection table
// until the client's template is gone; then the next connection goes to another backend.
func (b *persistBed) checkLifetime(t *testing.T, c persistCase, vip, client netip.Addr) {
	start := time.Now()
	first := b.request(t, client, vip, c.udp, c.reset)
	// The log shows the table when an entry comes, goes or changes state, and when the
	// template is re-armed (its expiry rises).
	var last string
	lastExpiry := 0
	sawState := false
	for {
		elapsed := time.Since(start)
		entries := b.conns(t, client)
		var tmpl *ipvsConn
		var shape []string
		for i, e := range entries {
			if e.Template() {
				tmpl = &entries[i]
			} else if e.State == c.state {
				sawState = true
			}
			shape = append(shape, e.Client.String()+" "+e.State)
		}
		rearmed := tmpl != nil && tmpl.ExpiresInSecs > lastExpiry
		if now := fmt.Sprint(shape); now != last || rearmed {
			t.Logf("+%5.1fs %v", elapsed.Seconds(), entries)
			last = now
		}
		if tmpl != nil {
			lastExpiry = tmpl.ExpiresInSecs
		}
		if tmpl == nil {
			if elapsed < c.min {
				t.Errorf("template went %.1fs after the connection began, before %v", elapsed.Seconds(), c.min)
			}
			t.Logf("template lifetime: %.1fs (rule: %v)", elapsed.Seconds(), c.min)
			break
		}
		if elapsed > c.max {
			t.Fatalf("template still there %.1fs after the connection began, past %v: %v", elapsed.Seconds(), c.max, entries)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !sawState {
		t.Errorf("the closed connection was never seen in state %s", c.state)
	}
	// Round robin's last pick made the template: without it, the next pick is another backend.
	if next := b.request(t, client, vip, c.udp, true); next == first {
		t.Errorf("after the template went, the next connection went to %s again", next)
	}
}
