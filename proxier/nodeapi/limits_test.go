package nodeapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/testenv"
)

// counter records refusals by reason.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) inc(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[reason]++
}

func (c *counter) get() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

func TestServerCountsRefusals(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store.max = 1
	srv := NewServer("/unused", store, nil)
	var c counter
	srv.SetRefusalCounter(c.inc)
	srv.SetIPValidator(func(ip netip.Addr) error {
		if !netip.MustParsePrefix("10.244.0.0/24").Contains(ip) {
			return fmt.Errorf("%s: outside the podCIDRs", ip)
		}
		return nil
	})
	reg := func(id, ip string) string { return `{"containerID":"` + id + `","ifName":"eth0","ips":["` + ip + `"]}` }
	tests := []struct {
		name, method, path, body string
		wantCode                 int
		wantReason               string
	}{
		{"registered", "POST", "/v1/register", reg("a", "10.244.0.5"), 204, ""},
		{"bad JSON", "POST", "/v1/register", `{"containerID":`, 400, RefusedBadRequest},
		{"unknown field", "POST", "/v1/unregister", `{"x":1}`, 400, RefusedBadRequest},
		{"register body over 64 KiB", "POST", "/v1/register", `{"containerID":"` + strings.Repeat("a", maxSmallBody) + `"}`, 400, RefusedBodyTooLarge},
		{"gc body over 1 MiB", "POST", "/v1/gc", `{"valid":[` + strings.Repeat(`{"containerID":"a","ifName":"eth0"},`, maxBody/34) + `]}`, 400, RefusedBodyTooLarge},
		{"invalid name", "POST", "/v1/register", `{"containerID":"a/b","ifName":"eth0"}`, 400, RefusedInvalid},
		{"loopback IP", "POST", "/v1/register", reg("b", "127.0.0.1"), 400, RefusedInvalid},
		{"outside the podCIDRs", "POST", "/v1/register", reg("b", "192.168.0.9"), 400, RefusedIPNotAllowed},
		{"over the cap", "POST", "/v1/register", reg("b", "10.244.0.6"), 429, RefusedTooMany},
		{"invalid unregister", "POST", "/v1/unregister", `{"containerID":"a","ifName":"a/b"}`, 400, RefusedInvalid},
		{"invalid query", "GET", "/v1/registration", ``, 400, RefusedInvalid},
	}
	h := rootOnly(srv.Handler(), srv.refused)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := c.get()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.wantCode {
				t.Errorf("%s %s = %d %q; want %d", tt.method, tt.path, rec.Code, rec.Body.String(), tt.wantCode)
			}
			want := before
			if tt.wantReason != "" {
				want[tt.wantReason]++
			}
			if diff := cmp.Diff(want, c.get()); diff != "" {
				t.Errorf("refusals (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("not root", func(t *testing.T) {
		before := c.get()
		req := httptest.NewRequest("GET", "/v1/status", nil)
		req = req.WithContext(context.WithValue(req.Context(), peerKey{}, peer{uid: 1000, pid: 7}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		before[RefusedNotRoot]++
		if rec.Code != http.StatusForbidden {
			t.Errorf("uid 1000 got %d, want 403", rec.Code)
		}
		if diff := cmp.Diff(before, c.get()); diff != "" {
			t.Errorf("refusals (-want +got):\n%s", diff)
		}
	})
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestServerRefusesADeclaredOversizedBodyUnread: a body whose Content-Length is over the
// limit is answered 400 and counted before a byte of it is read, so a flood of large bodies
// costs the proxier no reading and the caller gets its answer while still sending.
func TestServerRefusesADeclaredOversizedBodyUnread(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer("/unused", store, nil)
	var c counter
	srv.SetRefusalCounter(c.inc)
	for _, tt := range []struct {
		path  string
		limit int
	}{{"/v1/register", maxSmallBody}, {"/v1/unregister", maxSmallBody}, {"/v1/gc", maxBody}} {
		body := &countingReader{r: strings.NewReader(strings.Repeat("a", 2*tt.limit))}
		req := httptest.NewRequest("POST", tt.path, body)
		req.ContentLength = int64(2 * tt.limit)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || rec.Header().Get("Connection") != "close" {
			t.Errorf("POST %s with %d bytes declared = %d (Connection %q) %q; want 400, close", tt.path, 2*tt.limit, rec.Code, rec.Header().Get("Connection"), rec.Body.String())
		}
		if body.n != 0 {
			t.Errorf("POST %s: %d bytes of the body read before the refusal, want 0", tt.path, body.n)
		}
	}
	if diff := cmp.Diff(map[string]int{RefusedBodyTooLarge: 3}, c.get()); diff != "" {
		t.Errorf("refusals (-want +got):\n%s", diff)
	}
}

// TestServerCapsConnectionsPerCaller: a process that holds MaxConnsPerCaller connections open
// with half a request (slowloris) gets its next connection closed at once, counted, while
// another process (a plugin run) is still answered at once.
func TestServerCapsConnectionsPerCaller(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	store, err := NewStore(filepath.Join(dir, "regs"))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "proxier.sock")
	srv := NewServer(sock, store, func() Status { return Status{Ready: true, NodeName: "node-a"} })
	var c counter
	srv.SetRefusalCounter(c.inc)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	half := func() net.Conn {
		t.Helper()
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := io.WriteString(conn, "POST /v1/register HTTP/1.1\r\nHost: kubevs\r\n"); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	for range MaxConnsPerCaller {
		half()
	}
	// The server accepts in order: once the next one is closed, all those before are held.
	extra := half()
	_ = extra.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	// Closed with unread bytes, the socket reads as reset rather than EOF; a timeout means
	// the server still holds it.
	if _, err := extra.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Fatalf("connection %d of one process: read = %v after %v, want it closed at once by the server", MaxConnsPerCaller+1, err, time.Since(start).Round(time.Millisecond))
	}
	if got := c.get()[RefusedTooManyConns]; got != 1 {
		t.Errorf("%s counted %d times, want 1", RefusedTooManyConns, got)
	}

	// Another process: this test binary as TestNodeAPIPeerHelper.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), self, "-test.run=^TestNodeAPIPeerHelper$")
	cmd.Env = []string{helperEnv + "=" + sock}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "200 ") {
		t.Fatalf("another process got %q (%v) while one held %d connections; want 200", out, err, MaxConnsPerCaller)
	}
	_, took, _ := strings.Cut(string(out), "answered in ")
	d, err := time.ParseDuration(strings.TrimSpace(took))
	if err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if d > 2*time.Second { // DefaultTimeout of the plugin's client
		t.Errorf("another process was answered after %v, want under %v", d, 2*time.Second)
	}
	t.Logf("another process was answered in %v", d)
}
