package httpguard

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Slowloris dials addr, sends part of a request line and trickles header bytes. It
// returns how long the server kept the connection open (capped at max).
func Slowloris(t *testing.T, addr string, max time.Duration) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, c) // returns when the server closes
		close(closed)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(max)
	for {
		select {
		case <-closed:
			return time.Since(start)
		case <-deadline:
			return max
		case <-tick.C:
			_, _ = io.WriteString(c, "X-a: b\r\n") // never the blank line that ends the headers
		}
	}
}

func serve(t *testing.T, l Limits, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.Server(h)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l.Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().String()
}

func TestServerCutsOffSlowloris(t *testing.T) {
	l := Default
	l.ReadHeaderTimeout = 200 * time.Millisecond
	l.ReadTimeout = 300 * time.Millisecond
	addr := serve(t, l, http.NotFoundHandler())
	if held := Slowloris(t, addr, 5*time.Second); held >= 5*time.Second {
		t.Fatalf("a client trickling headers was held %v: not cut off", held)
	}
}

func TestServerCutsOffIdle(t *testing.T) {
	l := Default
	l.IdleTimeout = 200 * time.Millisecond
	addr := serve(t, l, http.NotFoundHandler())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("read a byte from an idle connection")
	}
	if d := time.Since(start); d >= 5*time.Second {
		t.Fatalf("idle kept-alive connection held %v", d)
	}
}

func TestServerRejectsHugeHeaders(t *testing.T) {
	l := Default
	l.MaxHeaderBytes = 1 << 10
	addr := serve(t, l, http.NotFoundHandler())
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 64 {
		req.Header.Set("X-Pad-"+string(rune('a'+i%26))+string(rune('a'+i/26)), string(make([]byte, 200)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return // the server closed the connection: rejected as well
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

func TestListenerCapsConcurrentConnections(t *testing.T) {
	const maxConns = 3
	l := Default
	l.MaxConns = maxConns
	var (
		inside, peak atomic.Int32
		release      = make(chan struct{})
	)
	addr := serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := inside.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inside.Add(-1)
	}))
	var wg sync.WaitGroup
	for range 3 * maxConns {
		wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: true}
			resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	// Wait until the cap is reached, give the others time to (wrongly) get in, then release.
	deadline := time.Now().Add(5 * time.Second)
	for inside.Load() < maxConns && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	if got := peak.Load(); got != maxConns {
		t.Fatalf("peak concurrent requests %d, want the cap %d", got, maxConns)
	}
}
