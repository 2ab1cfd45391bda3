package bed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartUntilReadyRestartsAnEarlyExit: a component that exits before it is ready (as
// kube-apiserver does when a post-start hook runs out of time) is started again, up to the
// bound; one that keeps exiting fails with the last exit; one that runs but is not ready is
// not started again.
func TestStartUntilReadyRestartsAnEarlyExit(t *testing.T) {
	// The script counts its starts in a file; it exits on the first ones and is ready (writes
	// "ready") from start number readyAt on.
	script := `n=$(($(cat "$DIR/starts" 2>/dev/null || echo 0) + 1)); echo $n > "$DIR/starts"
if [ $n -lt $READY_AT ]; then echo "PostStartHook failed (start $n)" >&2; exit 255; fi
touch "$DIR/ready"; exec sleep 60`
	tests := []struct {
		name       string
		readyAt    string
		starts     int
		wantErr    string
		wantStarts string
	}{
		{"ready at once", "1", 3, "", "1"},
		{"exits once, ready at the second start", "2", 3, "", "2"},
		{"exits on every start", "9", 3, "exit status 255", "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b := &Bed{LogDir: dir, cfg: Config{StartTimeout: 20 * time.Second}}
			t.Cleanup(func() { _ = b.stopAll() })
			t.Setenv("DIR", dir)
			t.Setenv("READY_AT", tt.readyAt)
			p, err := b.startUntilReady(context.Background(), tt.starts, "component", "/bin/sh", []string{"-c", script}, func(context.Context) error {
				if _, err := os.Stat(filepath.Join(dir, "ready")); err != nil {
					return errors.New("not ready")
				}
				return nil
			})
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("startUntilReady = %v, want error %q", err, tt.wantErr)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "starts")); strings.TrimSpace(string(got)) != tt.wantStarts {
				t.Errorf("started %s times, want %s", strings.TrimSpace(string(got)), tt.wantStarts)
			}
			if len(b.procs) != 1 || b.procs[0] != p {
				t.Errorf("the bed holds %d processes, want the last start only", len(b.procs))
			}
			if tt.readyAt == "2" && !strings.Contains(p.Tail(4096), "PostStartHook failed (start 1)") {
				t.Errorf("the first start's output is not kept in the log:\n%s", p.Tail(4096))
			}
		})
	}

	t.Run("running but not ready is not started again", func(t *testing.T) {
		dir := t.TempDir()
		b := &Bed{LogDir: dir, cfg: Config{StartTimeout: 300 * time.Millisecond}}
		t.Cleanup(func() { _ = b.stopAll() })
		t.Setenv("DIR", dir)
		_, err := b.startUntilReady(context.Background(), 3, "component", "/bin/sh", []string{"-c", `echo x >> "$DIR/starts"; exec sleep 60`}, func(context.Context) error {
			return errors.New("not ready")
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("startUntilReady = %v, want the deadline", err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "starts")); string(got) != "x\n" {
			t.Errorf("starts %q, want one", got)
		}
	})
}
