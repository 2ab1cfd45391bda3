package bed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcessStopEndsGroup(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	// The shell's child sleeps on after the shell is gone unless the whole group is killed.
	p, err := StartProcess(ctx, dir, "sh", "/bin/sh", "-c", "echo started; sleep 60 & echo $! > "+dir+"/child; wait")
	if err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, "child pid", 10*time.Second, 10*time.Millisecond, p, func(context.Context) error {
		if !strings.Contains(p.Tail(100), "started") {
			return errors.New("no output yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if exited, _ := p.Exited(); !exited {
		t.Error("process still running after Stop")
	}
	// The orphaned child is reaped by init a moment after it dies.
	if err := poll(context.Background(), "process group gone", 5*time.Second, 10*time.Millisecond, nil, func(context.Context) error {
		if err := syscall.Kill(-p.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill 0: %v", err)
		}
		return nil
	}); err != nil {
		t.Errorf("process group still has members after Stop: %v", err)
	}
	if err := p.Stop(time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestPollFailsFastWhenProcessExits(t *testing.T) {
	ctx := context.Background()
	p, err := StartProcess(ctx, t.TempDir(), "failing", "/bin/sh", "-c", "echo bad flag >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = poll(ctx, "readiness", time.Minute, 10*time.Millisecond, p, func(context.Context) error {
		return errors.New("not ready")
	})
	if err == nil || !strings.Contains(err.Error(), "failing exited") || !strings.Contains(err.Error(), "bad flag") {
		t.Errorf("poll = %v, want an error naming the exit and the log tail", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("poll took %s, want it to stop when the process exits", d)
	}
	if err := p.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Stop of a failed process = %v, want its exit status", err)
	}
}

func TestPollTimesOutWithLastReason(t *testing.T) {
	err := poll(context.Background(), "thing", 100*time.Millisecond, 10*time.Millisecond, nil, func(context.Context) error {
		return errors.New("still warming up")
	})
	if err == nil || !strings.Contains(err.Error(), "still warming up") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("poll = %v, want a deadline error with the last reason", err)
	}
}
