package daemon

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"
)

// An API server that cannot be reached at start: the proxier waits for its informers and
// stays alive (/livez 200, so a liveness probe does not restart it in a loop) but not
// ready (/readyz 503), however long it waits.
func TestUnreachableAPIServerStaysAlive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	client, err := kubernetes.NewForConfig(&rest.Config{Host: "http://" + closed, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d, err := New(Options{Config: cfg, Client: client, Kernel: newFakeKernel().kernel(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	code := func(path string) int {
		rec := httptest.NewRecorder()
		d.Health().Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	time.Sleep(200 * time.Millisecond) // the informers try the closed port
	clk.Step(5 * cfg.SyncPeriod.Duration)
	if d.tracker.HasSynced() {
		t.Fatal("the informers synced against a closed port")
	}
	if got := code("/livez"); got != http.StatusOK {
		t.Errorf("/livez = %d while waiting for the API server, want 200", got)
	}
	if got := code("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while waiting for the API server, want 503", got)
	}
	if d.Ready() {
		t.Error("ready without the API server")
	}
}
