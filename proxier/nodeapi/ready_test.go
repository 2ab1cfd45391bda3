package nodeapi

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A request the server does not answer in time is TimedOut; WasReady holds once the server
// marked itself ready, and only for the socket it listens on: a new server on the same path
// (a restarted proxier) does not inherit the mark.
func TestReadyMarkFollowsTheSocket(t *testing.T) {
	dir := t.TempDir()
	store, err := NewStore(filepath.Join(dir, "regs"))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "proxier.sock")
	release := make(chan struct{})
	slow := func() Status { <-release; return Status{Ready: true} }
	start := func() (*Server, func()) {
		srv := NewServer(sock, store, slow)
		if err := srv.Listen(); err != nil {
			t.Fatalf("listen: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()
		return srv, func() { cancel(); <-done }
	}
	srv, stop := start()

	c := NewClient(sock)
	c.Timeout = 100 * time.Millisecond
	_, err = c.Status(context.Background())
	if !TimedOut(err) {
		t.Fatalf("Status of a server that does not answer: %v, want TimedOut", err)
	}
	close(release) // the handler returns; the server can stop at once
	if WasReady(sock) {
		t.Error("WasReady before MarkReady")
	}
	if err := srv.MarkReady(); err != nil {
		t.Fatal(err)
	}
	if !WasReady(sock) {
		t.Error("not WasReady after MarkReady")
	}
	if st, err := os.Stat(sock + ".ready"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mark: %v, mode %v; want 0600", err, st.Mode().Perm())
	}

	stop()
	if WasReady(sock) {
		t.Error("WasReady with no socket")
	}
	if _, err := c.Status(context.Background()); TimedOut(err) || !NotListening(err) {
		t.Errorf("Status with nothing listening: %v, want NotListening and not TimedOut", err)
	}
	_, stop = start()
	defer stop()
	if WasReady(sock) {
		t.Error("a new server on the same path inherited the mark of the one before")
	}
}
