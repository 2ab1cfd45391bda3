package testserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// start serves on free loopback ports and returns their addresses.
func start(t *testing.T) (httpAddr, tcpAddr, udpAddr string) {
	t.Helper()
	cfg := Config{Hostname: "pod-a", HTTPPort: freePort(t, "tcp"), TCPPort: freePort(t, "tcp"), UDPPort: freePort(t, "udp")}
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	at := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	return at(cfg.HTTPPort), at(cfg.TCPPort), at(cfg.UDPPort)
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestHTTP(t *testing.T) {
	httpAddr, _, _ := start(t)
	for _, tc := range []struct{ path, want string }{
		{"/hostname", "pod-a\n"},
		{"/clientip", "127.0.0.1\n"},
		{"/healthz", "ok\n"},
	} {
		resp, err := http.Get("http://" + httpAddr + tc.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read %s: %v", tc.path, err)
		}
		if diff := cmp.Diff(tc.want, string(body)); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", tc.path, diff)
		}
	}
}

func TestTCPAndUDPEcho(t *testing.T) {
	_, tcpAddr, udpAddr := start(t)
	tests := []struct{ send, want string }{
		{"hostname", "pod-a"},
		{"clientip", "127.0.0.1"},
		{"hello there", "hello there"},
	}
	conn, err := net.DialTimeout("tcp", tcpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for _, tc := range tests {
		fmt.Fprintln(conn, tc.send)
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("tcp %q: %v", tc.send, err)
		}
		if got := strings.TrimSuffix(line, "\n"); got != tc.want {
			t.Errorf("tcp %q: got %q, want %q", tc.send, got, tc.want)
		}
	}
	uc, err := net.Dial("udp", udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	buf := make([]byte, 1500)
	for _, tc := range tests {
		if _, err := uc.Write([]byte(tc.send)); err != nil {
			t.Fatal(err)
		}
		_ = uc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := uc.Read(buf)
		if err != nil {
			t.Fatalf("udp %q: %v", tc.send, err)
		}
		if got := string(buf[:n]); got != tc.want {
			t.Errorf("udp %q: got %q, want %q", tc.send, got, tc.want)
		}
	}
}

func TestListenFailsOnBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Listen(Config{HTTPPort: l.Addr().(*net.TCPAddr).Port}); err == nil {
		t.Fatal("Listen on a busy port succeeded")
	}
}
