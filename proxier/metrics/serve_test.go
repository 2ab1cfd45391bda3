package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kubevs/kubevs/proxier/internal/httpguard"
)

// TestServeLimitsClients: the health and metrics servers cap the connections they hold and
// cut off a client that never finishes its headers.
func TestServeLimitsClients(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, NewHealth(time.Minute, nil).Handler()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	addr := ln.Addr().String()
	var held []net.Conn
	for range httpguard.Default.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: "); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	client := &http.Client{Timeout: time.Second}
	if resp, err := client.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d with %d connections open: no connection cap", resp.StatusCode, len(held))
	}
	// The held clients are cut off after ReadHeaderTimeout, which frees the listener.
	client.Timeout = httpguard.Default.ReadHeaderTimeout + 5*time.Second
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("slow clients were not cut off: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
