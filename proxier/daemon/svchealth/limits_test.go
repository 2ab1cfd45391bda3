package svchealth

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// holdOpen dials addr and sends a request whose headers never end, as a slowloris client
// does. closed is closed when the server hangs up.
func holdOpen(t *testing.T, addr string) (c net.Conn, closed <-chan struct{}) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-a: "); err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, c); close(ch) }()
	return c, ch
}

func TestHealthCheckPortCutsOffSlowloris(t *testing.T) {
	l := newLoopback()
	s := New(nil, l.listen)
	t.Cleanup(s.Close)
	s.limits.ReadHeaderTimeout = 200 * time.Millisecond
	if err := s.Sync(map[types.NamespacedName]Entry{web: {30100, 1}}); err != nil {
		t.Fatal(err)
	}
	_, closed := holdOpen(t, l.addr(":30100"))
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("a client that never finishes its headers is still connected after 5s")
	}
}

func TestHealthCheckPortCapsConnections(t *testing.T) {
	l := newLoopback()
	s := New(nil, l.listen)
	t.Cleanup(s.Close)
	s.limits.MaxConns = 2
	if err := s.Sync(map[types.NamespacedName]Entry{web: {30100, 1}}); err != nil {
		t.Fatal(err)
	}
	addr := l.addr(":30100")
	var held []net.Conn
	for range s.limits.MaxConns {
		c, _ := holdOpen(t, addr)
		held = append(held, c)
	}
	time.Sleep(50 * time.Millisecond) // let the server accept them
	client := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := client.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d while %d connections were open: no connection cap", resp.StatusCode, len(held))
	}
	for _, c := range held {
		c.Close()
	}
	if code, _ := get(t, addr); code != http.StatusOK {
		t.Fatalf("after the held connections closed: status %d, want 200", code)
	}
}
