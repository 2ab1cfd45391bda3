package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// serveOn serves h on a loopback port until the test ends: its base URL.
func serveOn(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, l, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

// get returns the status code and body of url, or the client's error.
func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Profiles are served only when asked for (enableProfiling), beside /metrics.
func TestProfilesOnlyWhenEnabled(t *testing.T) {
	m := New()
	off := serveOn(t, m.Handler(false))
	on := serveOn(t, m.Handler(true))
	ctx := context.Background()
	if code, _, err := get(ctx, off+"/debug/pprof/"); err != nil || code != http.StatusNotFound {
		t.Errorf("profiling off: /debug/pprof/ answered %d (%v), want 404", code, err)
	}
	code, body, err := get(ctx, on+"/debug/pprof/")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("profiling on: /debug/pprof/ answered %d (%v), want 200 listing the goroutine profile", code, err)
	}
	if code, body, err := get(ctx, on+"/debug/pprof/goroutine?debug=1"); err != nil || code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("profiling on: goroutine profile answered %d (%v)", code, err)
	}
	if code, _, err := get(ctx, on+"/metrics"); err != nil || code != http.StatusOK {
		t.Errorf("profiling on: /metrics answered %d (%v), want 200", code, err)
	}
}
