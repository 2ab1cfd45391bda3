package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// writeProxier writes a stand-in proxier that logs its version to log, then runs until
// terminated; by a rename over path, as kubevs-install replaces a binary.
func writeProxier(t *testing.T, path, version, log string) {
	t.Helper()
	tmp := path + ".new"
	script := "#!/bin/sh\necho " + version + " >> " + log + "\nexec sleep 60\n"
	if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitStarts(t *testing.T, log, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(log)
		if strings.Join(strings.Fields(string(b)), " ") == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxier starts %q, want %q", strings.Join(strings.Fields(string(b)), " "), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSuperviseRestartsUpgradedBinary: a proxier binary replaced on disk is restarted at
// once (no backoff: the old one was healthy), and only once; a binary that goes missing
// keeps the running proxier until a new one is in place.
func TestSuperviseRestartsUpgradedBinary(t *testing.T) {
	dir := t.TempDir()
	bin, log := filepath.Join(dir, "kubevs-proxier"), filepath.Join(dir, "starts")
	writeProxier(t, bin, "v1", log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// Backoff long enough that a restart through it would miss the deadlines below.
	b := Backoff{Initial: time.Minute, Max: time.Minute, Healthy: time.Hour}
	go func() { done <- supervise(ctx, []string{bin}, b, nil, 20*time.Millisecond) }()
	waitStarts(t, log, "v1")

	writeProxier(t, bin, "v2", log)
	waitStarts(t, log, "v1 v2")

	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // ten polls with the binary missing
	waitStarts(t, log, "v1 v2")
	writeProxier(t, bin, "v3", log)
	waitStarts(t, log, "v1 v2 v3")

	time.Sleep(200 * time.Millisecond) // ten polls of an unchanged binary: no restart
	waitStarts(t, log, "v1 v2 v3")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("supervise: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("supervise did not stop")
	}
}

// TestSuperviseStopsWhenProxierYields: a proxier that exits with nodeapi.ExitYielded (another
// proxier, a DaemonSet's, serves the node API socket) is not restarted: the supervisor
// returns, releasing the launch lock. Any other exit is restarted.
func TestSuperviseStopsWhenProxierYields(t *testing.T) {
	for _, tc := range []struct {
		code       int
		wantReturn bool
	}{
		{code: nodeapi.ExitYielded, wantReturn: true},
		{code: 1, wantReturn: false},
	} {
		t.Run(fmt.Sprintf("exit %d", tc.code), func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "starts")
			script := fmt.Sprintf(`echo "$%s" >> "$0"; exit %d`, nodeapi.SupervisedEnv, tc.code)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			b := Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond, Healthy: time.Hour}
			go func() { done <- supervise(ctx, []string{"/bin/sh", "-c", script, log}, b, nil, time.Hour) }()
			select {
			case err := <-done:
				if !tc.wantReturn {
					t.Fatalf("supervise returned (%v); want it to restart the proxier", err)
				}
				if err != nil {
					t.Errorf("supervise: %v", err)
				}
				waitStarts(t, log, "1") // one start, which saw SupervisedEnv=1
			case <-time.After(2 * time.Second):
				if tc.wantReturn {
					t.Fatal("supervise still restarting a proxier that yielded")
				}
				cancel()
				<-done
				if b, _ := os.ReadFile(log); len(strings.Fields(string(b))) < 3 {
					t.Errorf("starts %q: want a restart loop", b)
				}
			}
		})
	}
}
