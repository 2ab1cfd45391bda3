package ipvs

// What the kernel does to an established TCP connection whose virtual server is deleted
// (ipvsadm -D) and added back with the same real server, measured on the VM's kernel without
// kubevs. The soak (test/e2e/soak_faults_test.go) injects that deletion and reports a flow
// through the deleted virtual server that breaks as "ended with its virtual server": this test
// pins the kernel rule it relies on.
//
// The rule (net/netfilter/ipvs): deleting a virtual server leaves its connections in the
// connection table; each holds its real server, which the deletion marks unavailable and
// parks in a trash list instead of freeing. Adding the same real server to the same virtual
// server again takes it back from the trash and makes it available: a connection that sent
// nothing in between carries on. A packet that arrives while its real server is unavailable
// is dropped and, with net/ipv4/vs/expire_nodest_conn=1 (kubevs and kube-proxy set it), its
// connection is expired at once: the client's retransmission is no longer IPVS's, the
// director's own stack (the VIP is on its lo, nothing listens) answers it with a reset,
// whether the virtual server is back by then or not (IPVS only schedules a SYN). With
// expire_nodest_conn=0 the packet is dropped and the connection kept: the retransmission
// that follows the re-addition goes through.

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
	sendInGap    bool   // the client sends a byte while the virtual server is gone
	// want is how the connection ends after the client's half-close: "eof" (the backend
	// read everything, closed, and its FIN came back through the director) or "reset".
	want string
	// keptInGap: the connection is still in the director's table once the client's byte
	// has been retransmitted in the gap (false: expired by it).
	keptInGap bool
}

func TestDeletedVirtualServerEndsItsConnections(t *testing.T) {
	testenv.RequireVM(t)
	bed := newDirectorBed(t)
	cases := []nodestCase{
		{name: "expire_nodest_conn=1/send-in-gap", expireNodest: "1", conntrack: "1", sendInGap: true, want: "reset"},
		{name: "expire_nodest_conn=1/quiet-gap", expireNodest: "1", conntrack: "1", want: "eof"},
		{name: "expire_nodest_conn=0/send-in-gap", expireNodest: "0", conntrack: "1", sendInGap: true, want: "eof", keptInGap: true},
		// Without IPVS conntrack the dropped packet's connection goes the same way.
		{name: "expire_nodest_conn=1/send-in-gap/no-conntrack", expireNodest: "1", conntrack: "0", sendInGap: true, want: "reset"},
	}
	// The sysctls are the director's, so the cases run one after the other.
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bed.setSysctl(t, "net/ipv4/vs/expire_nodest_conn", c.expireNodest)
			bed.setSysctl(t, "net/ipv4/vs/conntrack", c.conntrack)
			vip := netip.AddrFrom4([4]byte{10, 96, 10, byte(1 + i)})
			client := netip.AddrFrom4([4]byte{10, 0, 2, byte(2 + i%4)})
			bed.checkDeletedVirtualServer(t, c, vip, client)
		})
	}
}

// checkDeletedVirtualServer opens a connection from client through vip:80 to the first
// backend, deletes the virtual server, optionally sends a byte, adds the virtual server and
// the same real server back, then half-closes and reads how the connection ends.
func (b *directorBed) checkDeletedVirtualServer(t *testing.T, c nodestCase, vip, client netip.Addr) {
	key := Key{Address: vip, Protocol: TCP, Port: 80}
	vs := VirtualServer{Key: key, Scheduler: "rr"}
	rs := RealServer{Address: b.backendAddrs[0], Port: 8080, Weight: 1}
	b.addVIP(t, vip)
	b.addOneRealServer(t, vs, rs)
	t.Cleanup(func() { _ = b.ipvs.DeleteVirtualServer(key) })

	conn, r := b.dialThrough(t, client, vip)
	defer conn.Close()
	if _, ok := b.established(t, conn); !ok {
		t.Fatalf("no connection of %s in the director's table: %v", conn.LocalAddr(), b.conns(t, client))
	}

	start := time.Now()
	if err := b.ipvs.DeleteVirtualServer(key); err != nil {
		t.Fatal(err)
	}
	// The deletion alone leaves the connection in the table.
	if e, ok := b.established(t, conn); !ok {
		t.Fatalf("deleting %s took its connection from the table: %v", vs, b.conns(t, client))
	} else {
		t.Logf("after the deletion: %v", e)
	}
	if c.sendInGap {
		if _, err := conn.Write([]byte("x")); err != nil {
			t.Fatalf("send in the gap: %v", err)
		}
		// The director must not have forwarded it: wait for the client to retransmit.
		info := waitTCP(t, conn, 20*time.Second, "the byte sent in the gap is retransmitted", func(i *unix.TCPInfo) bool {
			return i.Total_retrans >= 1 || i.State == tcpClose
		})
		_, kept := b.established(t, conn)
		t.Logf("+%.2fs in the gap: client %s, retransmissions %d, connection in the director's table: %v",
			time.Since(start).Seconds(), tcpStateName(info.State), info.Total_retrans, kept)
		if kept != c.keptInGap {
			t.Errorf("connection in the director's table after the byte sent in the gap = %v, want %v: %v", kept, c.keptInGap, b.conns(t, client))
		}
	}
	b.addOneRealServer(t, vs, rs)
	t.Logf("+%.2fs %s and %s added back", time.Since(start).Seconds(), vs, rs)

	got, detail := finish(conn, r, !c.sendInGap)
	t.Logf("+%.2fs the connection ends: %s (%s)", time.Since(start).Seconds(), got, detail)
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

// established returns conn's entry in the director's connection table, ok false when there
// is none.
func (b *directorBed) established(t *testing.T, conn net.Conn) (ipvsConn, bool) {
	t.Helper()
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	entries := b.conns(t, local.Addr())
	i := slices.IndexFunc(entries, func(e ipvsConn) bool { return e.Client == local })
	if i < 0 {
		return ipvsConn{}, false
	}
	return entries[i], true
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
