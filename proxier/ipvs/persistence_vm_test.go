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
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kubevs/kubevs/internal/testenv"
)

// persistUDPTimeout is the director's IPVS UDP timeout in TestPersistenceTemplateLifetime.
const persistUDPTimeout = 8 * time.Second

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
	bed := newDirectorBed(t)
	// What the proxier does for ipvs.udpTimeout.
	if err := bed.ipvs.SetTimeouts(Timeouts{UDP: persistUDPTimeout}); err != nil {
		t.Fatal(err)
	}
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

// addVirtualServer adds TCP vip:80 over every backend's :8080 (or UDP vip:53 over :8053),
// round robin, persistent for timeout seconds, and puts vip on the director's loopback.
func (b *directorBed) addVirtualServer(t *testing.T, vip netip.Addr, udp bool, timeout uint32) {
	t.Helper()
	b.addVIP(t, vip)
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
func (b *directorBed) request(t *testing.T, client, vip netip.Addr, udp, reset bool) string {
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

// checkLifetime makes one connection, closes it as c says, and polls the connection table
// until the client's template is gone; then the next connection goes to another backend.
func (b *directorBed) checkLifetime(t *testing.T, c persistCase, vip, client netip.Addr) {
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
