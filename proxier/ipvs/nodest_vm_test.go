package ipvs

// What the kernel does to an established TCP connection whose virtual server is deleted
// (ipvsadm -D) and added back with the same real server, measured on the VM's kernel (6.1)
// without kubevs. The soak (test/e2e/soak_faults_test.go) injects that deletion and reports a
// flow through the deleted virtual server that breaks as "ended with its virtual server":
// this test pins the kernel rules it relies on.
//
// What the cases observe, and the kernel code (net/netfilter/ipvs) that explains it:
//   - Deleting a virtual server leaves its connections in the table; each holds its real
//     server, which the deletion marks unavailable and parks in a trash list. Adding the
//     same real server to the same virtual server again takes it back from the trash: with
//     expire_nodest_conn=0 a connection quiet for the gap carries on.
//   - With net/ipv4/vs/expire_nodest_conn=1 (kubevs and kube-proxy set it) the deletion
//     also queues work, one tick later, that removes every connection whose real server is
//     unavailable (Linux 5.9 and later): the connection leaves the table within milliseconds
//     whether a packet comes or not, so re-creating the virtual server, as kubevs does a
//     resync later, cannot save it.
//   - The connection gone, the client's next segment is no longer IPVS's (IPVS schedules
//     a TCP connection only on a SYN): the director's own stack, which holds the VIP on lo
//     and no listener, answers it with a reset, virtual server back or not.
//   - With expire_nodest_conn=0 nothing removes it: a packet in the gap is dropped, the
//     connection kept, and the retransmission after the re-addition goes through.
//   - IPVS unhooks itself from netfilter when a namespace's last virtual server goes: then
//     a packet in the gap reaches the director's stack and is reset even with
//     expire_nodest_conn=0. The soak's node always keeps other Services; the other cases
//     keep a bystander virtual server for that.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/internal/testenv"
)

// nodestCase is one established connection through a virtual server that is deleted and
// added back.
type nodestCase struct {
	name         string
	expireNodest string // net/ipv4/vs/expire_nodest_conn in the director
	conntrack    string // net/ipv4/vs/conntrack in the director (kubevs sets 1)
	lastVS       bool   // no bystander: the deleted virtual server is the director's last
	// sendInGap: the client sends a byte while the virtual server is gone, and the gap
	// waits until it retransmitted it or was reset; otherwise the client sends after the
	// re-addition. Either way the gap lasts until the connection leaves the director's
	// table (leaveWithin at most) or, when it is to be kept, for keepFor.
	sendInGap bool
	// keptInGap: the connection is still in the director's table after keepFor; otherwise
	// it must leave it within leaveWithin.
	keptInGap bool
	// want is how the connection ends after the client's half-close (see finish): "eof"
	// (the backend read everything and closed, its FIN came back through the director) or
	// "reset".
	want string
}

// How long a kept connection is watched, and how soon one that goes must have left the
// table. expire_nodest_conn=1 removes it a tick after the deletion; in a loaded emulated
// guest it was seen to take up to 1.1 s to leave.
const (
	keepFor     = 3 * time.Second
	leaveWithin = 10 * time.Second
)

func TestDeletedVirtualServerEndsItsConnections(t *testing.T) {
	testenv.RequireVM(t)
	cases := []nodestCase{
		{name: "expire_nodest_conn=1/send-in-gap", expireNodest: "1", conntrack: "1", sendInGap: true, want: "reset"},
		// Gone before the re-addition though the client was quiet.
		{name: "expire_nodest_conn=1/quiet-gap", expireNodest: "1", conntrack: "1", want: "reset"},
		{name: "expire_nodest_conn=1/send-in-gap/no-conntrack", expireNodest: "1", conntrack: "0", sendInGap: true, want: "reset"},
		// Dropped, retransmitted after the re-addition: it goes through.
		{name: "expire_nodest_conn=0/send-in-gap", expireNodest: "0", conntrack: "1", sendInGap: true, keptInGap: true, want: "eof"},
		// The trash gives the real server back: the connection carries on.
		{name: "expire_nodest_conn=0/quiet-gap", expireNodest: "0", conntrack: "1", keptInGap: true, want: "eof"},
		{name: "expire_nodest_conn=0/send-in-gap/last-virtual-server", expireNodest: "0", conntrack: "1", lastVS: true, sendInGap: true, keptInGap: true, want: "reset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Each case its own director: the sysctls and the hooks are per namespace.
			bed := newDirectorBed(t)
			bed.setSysctl(t, "net/ipv4/vs/expire_nodest_conn", c.expireNodest)
			bed.setSysctl(t, "net/ipv4/vs/conntrack", c.conntrack)
			if !c.lastVS {
				bystander := netip.MustParseAddr("10.96.10.250")
				bed.addVIP(t, bystander)
				bed.addOneRealServer(t, VirtualServer{Key: Key{Address: bystander, Protocol: TCP, Port: 80}, Scheduler: "rr"},
					RealServer{Address: bed.backendAddrs[1], Port: 8080, Weight: 1})
			}
			bed.checkDeletedVirtualServer(t, c, netip.MustParseAddr("10.96.10.1"), netip.MustParseAddr("10.0.2.2"))
		})
	}
}

// checkDeletedVirtualServer opens a connection from client through vip:80 to the first
// backend, deletes the virtual server, sends a byte in the gap or waits, adds the virtual
// server and the same real server back, then half-closes and reads how the connection ends.
func (b *directorBed) checkDeletedVirtualServer(t *testing.T, c nodestCase, vip, client netip.Addr) {
	key := Key{Address: vip, Protocol: TCP, Port: 80}
	vs := VirtualServer{Key: key, Scheduler: "rr"}
	rs := RealServer{Address: b.backendAddrs[0], Port: 8080, Weight: 1}
	b.addVIP(t, vip)
	b.addOneRealServer(t, vs, rs)

	conn, r := b.dialThrough(t, client, vip)
	defer conn.Close()
	if e, ok := b.entry(t, conn.LocalAddr()); !ok || e.State != "ESTABLISHED" {
		t.Fatalf("no established connection of %s in the director's table: %v", conn.LocalAddr(), b.conns(t, client))
	}

	start := time.Now()
	if err := b.ipvs.DeleteVirtualServer(key); err != nil {
		t.Fatal(err)
	}
	if c.sendInGap {
		if _, err := conn.Write([]byte("x")); err != nil {
			t.Fatalf("send in the gap: %v", err)
		}
		// Not forwarded: the client retransmits it, or is reset.
		info := waitTCP(t, conn, 20*time.Second, "the byte sent in the gap is retransmitted or reset", func(i *unix.TCPInfo) bool {
			return i.Total_retrans >= 1 || i.State == tcpClose
		})
		t.Logf("+%.3fs the byte sent in the gap: client %s, retransmissions %d",
			time.Since(start).Seconds(), tcpStateName(info.State), info.Total_retrans)
	}
	within := leaveWithin
	if c.keptInGap {
		within = keepFor
	}
	kept := b.waitLeaves(t, conn.LocalAddr(), start, within)
	if kept != c.keptInGap {
		t.Errorf("connection in the director's table at the end of the gap = %v, want %v: %v", kept, c.keptInGap, b.conns(t, client))
	}
	b.addOneRealServer(t, vs, rs)
	t.Logf("+%.3fs %s and %s added back", time.Since(start).Seconds(), vs, rs)

	got, detail := finish(conn, r, !c.sendInGap)
	t.Logf("+%.3fs the connection ends: %s (%s)", time.Since(start).Seconds(), got, detail)
	if got != c.want {
		t.Errorf("connection ended with %q (%s), want %q", got, detail, c.want)
	}
}

// addOneRealServer adds vs with rs as its only real server.
func (b *directorBed) addOneRealServer(t *testing.T, vs VirtualServer, rs RealServer) {
	t.Helper()
	if err := b.ipvs.AddVirtualServer(vs); err != nil {
		t.Fatal(err)
	}
	if err := b.ipvs.AddRealServer(vs.Key, rs); err != nil {
		t.Fatal(err)
	}
}

// dialThrough connects from client to vip:80 and reads the backend's address line, which
// proves the connection goes through the director to the backend.
func (b *directorBed) dialThrough(t *testing.T, client, vip netip.Addr) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	var c net.Conn
	b.in(t, b.clients, func() (err error) {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(client, 0)), Timeout: 10 * time.Second}
		c, err = d.Dial("tcp", net.JoinHostPort(vip.String(), "80"))
		return err
	})
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		t.Fatalf("read the backend's address through %s: %v", vip, err)
	}
	if got, want := strings.TrimSpace(line), b.backendAddrs[0].String(); got != want {
		c.Close()
		t.Fatalf("connection through %s answered by %s, want %s", vip, got, want)
	}
	return c.(*net.TCPConn), r
}

// entry returns the director's connection table entry of the client socket local (the
// address the client's conn is bound to), ok false when there is none.
func (b *directorBed) entry(t *testing.T, local net.Addr) (ipvsConn, bool) {
	t.Helper()
	var ap netip.AddrPort
	switch a := local.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		t.Fatalf("client address %v is neither TCP nor UDP", local)
	}
	entries := b.conns(t, ap.Addr())
	i := slices.IndexFunc(entries, func(e ipvsConn) bool { return e.Client == ap })
	if i < 0 {
		return ipvsConn{}, false
	}
	return entries[i], true
}

// waitLeaves polls until local's connection leaves the director's table, within after
// start at most; it reports whether the connection is still there.
func (b *directorBed) waitLeaves(t *testing.T, local net.Addr, start time.Time, within time.Duration) (kept bool) {
	t.Helper()
	for {
		if _, ok := b.entry(t, local); !ok {
			t.Logf("+%.3fs the connection has left the director's table", time.Since(start).Seconds())
			return false
		}
		if time.Since(start) >= within {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// finish sends a byte if send, half-closes, and reads until the connection ends. outcome is
//   - "eof": every call succeeded and the read ended cleanly: the backend's FIN came back;
//   - "reset": a call failed with ECONNRESET, the error a reset received on an open
//     connection leaves for the next call (the ones after it see EOF or EPIPE);
//   - "closed": the socket was closed before (ENOTCONN, EPIPE) and no call saw the reset;
//   - "other".
//
// detail lists the calls' errors.
func finish(conn *net.TCPConn, r *bufio.Reader, send bool) (outcome, detail string) {
	var errs []error
	note := func(call string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", call, err))
		}
	}
	if send {
		_, err := conn.Write([]byte("x"))
		note("write", err)
	}
	note("half-close", conn.CloseWrite())
	n, err := io.Copy(io.Discard, r)
	if err == nil {
		err = io.EOF // io.Copy reports a clean end as nil
	}
	note("read", err)
	if n > 0 {
		errs = append(errs, fmt.Errorf("read %d unexpected bytes", n))
	}
	all := errors.Join(errs...)
	detail = strings.ReplaceAll(all.Error(), "\n", "; ")
	switch {
	case errors.Is(all, syscall.ECONNRESET):
		return "reset", detail
	case errors.Is(all, syscall.ENOTCONN) || errors.Is(all, syscall.EPIPE):
		return "closed", detail
	case len(errs) == 1 && errors.Is(err, io.EOF) && n == 0:
		return "eof", detail
	default:
		return "other", detail
	}
}

// The TCP states of TCP_INFO that the test names.
const (
	tcpEstablished = 1
	tcpClose       = 7
)

func tcpStateName(s uint8) string {
	switch s {
	case tcpEstablished:
		return "ESTABLISHED"
	case tcpClose:
		return "CLOSE"
	}
	return fmt.Sprintf("state %d", s)
}

// waitTCP polls conn's TCP_INFO until done holds, failing the test after timeout.
func waitTCP(t *testing.T, conn *net.TCPConn, timeout time.Duration, what string, done func(*unix.TCPInfo) bool) *unix.TCPInfo {
	t.Helper()
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		var info *unix.TCPInfo
		var ierr error
		if err := raw.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
			t.Fatal(err)
		}
		if ierr != nil {
			t.Fatalf("read TCP_INFO of %s: %v", conn.LocalAddr(), ierr)
		}
		if done(info) {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (client %s, retransmissions %d)", what, timeout, tcpStateName(info.State), info.Total_retrans)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
