package plugin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFindBinary(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	write := func(p string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir1, "kubevs-proxier"), 0o644) // not executable: skipped
	write(filepath.Join(dir2, "kubevs-proxier"), 0o755)
	tests := []struct {
		name, bin, path, want, wantErr string
	}{
		{name: "found in second CNI_PATH dir", bin: "kubevs-proxier", path: dir1 + ":" + dir2, want: filepath.Join(dir2, "kubevs-proxier")},
		{name: "absolute", bin: filepath.Join(dir2, "kubevs-proxier"), want: filepath.Join(dir2, "kubevs-proxier")},
		{name: "absolute not executable", bin: filepath.Join(dir1, "kubevs-proxier"), wantErr: "not an executable"},
		{name: "absent", bin: "kubevs-proxier", path: dir1, wantErr: "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindBinary(tt.bin, tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FindBinary = %q, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FindBinary = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestTryLockExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), LaunchLockName)
	f, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(p); !errors.Is(err, ErrLaunchBusy) {
		t.Fatalf("second TryLock = %v, want ErrLaunchBusy", err)
	}
	f.Close()
	g, err := TryLock(p)
	if err != nil {
		t.Fatalf("TryLock after release: %v", err)
	}
	g.Close()
	link := filepath.Join(t.TempDir(), "link.lock")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(link); err == nil {
		t.Error("TryLock followed a symlink")
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 4 * time.Second, Healthy: time.Minute}
	var waits []time.Duration
	var w time.Duration
	for _, ran := range []time.Duration{0, 0, 0, 0, 2 * time.Minute, 0} {
		w = b.next(w, ran)
		waits = append(waits, w)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, time.Second, 2 * time.Second}
	if strings.Join(durStrings(waits), ",") != strings.Join(durStrings(want), ",") {
		t.Errorf("waits = %v, want %v", waits, want)
	}
}

func durStrings(ds []time.Duration) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

// TestSuperviseRestartsAndStops: a command that keeps crashing is restarted; cancelling the
// context stops a running one with SIGTERM and returns.
func TestSuperviseRestartsAndStops(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "starts")
	// Crash at once for the first three starts, then run until terminated.
	script := `echo x >> "$1"; n=$(wc -l < "$1"); [ "$n" -lt 4 ] && exit 1; exec sleep 60`
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Supervise(ctx, []string{"/bin/sh", "-c", script, "sh", count}, Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, Healthy: time.Minute}, nil)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(count)
		if strings.Count(string(b), "x") >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d starts", strings.Count(string(b), "x"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Supervise: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Supervise did not stop")
	}
	if b, _ := os.ReadFile(count); strings.Count(string(b), "x") != 4 {
		t.Errorf("starts = %d, want 4 (no restart after stop)", strings.Count(string(b), "x"))
	}
}
