package ipvs

// The UDP side of nodest_vm_test.go: a client socket (one source port, so one IPVS
// connection) that keeps asking a UDP virtual server that is deleted and added back, with
// expire_nodest_conn=1 as kubevs sets it. As observed: the connection leaves the table a
// tick after the deletion; a datagram in the gap reaches the director's own stack, which
// answers port unreachable (the client's connected socket reads ECONNREFUSED); after the
// re-addition IPVS schedules the socket's next datagram afresh, a new connection: the
// scheduler picks the backend again (here the only one).

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubevs/kubevs/internal/testenv"
)

func TestDeletedVirtualServerUDP(t *testing.T) {
	testenv.RequireVM(t)
	cases := []struct {
		name      string
		sendInGap bool
		// wantGap is the answer to the datagram sent in the gap (see askUDP).
		wantGap string
	}{
		{name: "expire_nodest_conn=1/send-in-gap", sendInGap: true, wantGap: "refused"},
		{name: "expire_nodest_conn=1/quiet-gap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bed := newDirectorBed(t)
			bed.setSysctl(t, "net/ipv4/vs/expire_nodest_conn", "1")
			bed.setSysctl(t, "net/ipv4/vs/conntrack", "1")
			bystander := netip.MustParseAddr("10.96.10.250")
			bed.addVIP(t, bystander)
			bed.addOneRealServer(t, VirtualServer{Key: Key{Address: bystander, Protocol: UDP, Port: 53}, Scheduler: "rr"},
				RealServer{Address: bed.backendAddrs[1], Port: 8053, Weight: 1})

			vip := netip.MustParseAddr("10.96.10.1")
			vs := VirtualServer{Key: Key{Address: vip, Protocol: UDP, Port: 53}, Scheduler: "rr"}
			rs := RealServer{Address: bed.backendAddrs[0], Port: 8053, Weight: 1}
			bed.addVIP(t, vip)
			bed.addOneRealServer(t, vs, rs)
			var conn net.Conn
			bed.in(t, bed.clients, func() (err error) {
				conn, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.0.2.2:0")), net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, 53)))
				return err
			})
			defer conn.Close()
			want := "answered by " + rs.Address.String()
			if got := askUDP(conn); got != want {
				t.Fatalf("first datagram: %s, want %s", got, want)
			}
			if _, ok := bed.entry(t, conn.LocalAddr()); !ok {
				t.Fatalf("no connection of %s in the director's table: %v", conn.LocalAddr(), bed.conns(t, netip.MustParseAddr("10.0.2.2")))
			}

			start := time.Now()
			if err := bed.ipvs.DeleteVirtualServer(vs.Key); err != nil {
				t.Fatal(err)
			}
			if bed.waitLeaves(t, conn.LocalAddr(), start, leaveWithin) {
				t.Errorf("the connection is still in the director's table %v after the deletion: %v", leaveWithin, bed.conns(t, netip.MustParseAddr("10.0.2.2")))
			}
			// Sent once the connection has gone: a datagram is not sent again, and one that
			// finds the connection still there may be dropped as it expires it.
			if c.sendInGap {
				got := askUDP(conn)
				t.Logf("+%.3fs the datagram sent in the gap: %s", time.Since(start).Seconds(), got)
				if got != c.wantGap {
					t.Errorf("datagram sent in the gap: %s, want %s", got, c.wantGap)
				}
			}
			bed.addOneRealServer(t, vs, rs)
			// Any datagram is scheduled: the same socket gets a new connection.
			got := askUDP(conn)
			t.Logf("+%.3fs after the re-addition: %s", time.Since(start).Seconds(), got)
			if got != want {
				t.Errorf("datagram after the re-addition: %s, want %s", got, want)
			}
			if _, ok := bed.entry(t, conn.LocalAddr()); !ok {
				t.Errorf("no new connection of %s in the director's table", conn.LocalAddr())
			}
		})
	}
}

// askUDP sends one datagram and says what came of it: "answered by <backend>", "refused"
// (an ICMP port unreachable came back: ECONNREFUSED), "no answer" within 5 s, or the error.
func askUDP(conn net.Conn) string {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("which\n")); err != nil {
		return "send: " + err.Error()
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	switch {
	case err == nil:
		return "answered by " + strings.TrimSpace(string(buf[:n]))
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "no answer"
	}
	return err.Error()
}
