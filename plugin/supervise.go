package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// Backoff is the supervisor's restart policy: the first restart waits Initial, each quick
// crash doubles the wait up to Max, and a run that lasted Healthy resets it.
type Backoff struct {
	Initial, Max, Healthy time.Duration
}

// DefaultBackoff restarts fast once, then backs off to 30 s for a crash loop.
var DefaultBackoff = Backoff{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Healthy: 30 * time.Second}

// next returns the wait before the next start after a run of length ran that waited prev.
func (b Backoff) next(prev, ran time.Duration) time.Duration {
	if prev == 0 || ran >= b.Healthy {
		return b.Initial
	}
	return min(2*prev, b.Max)
}

// lockFD is the descriptor the launcher passes the launch lock on, and lockEnv the variable
// that says so (a supervisor started by hand has no lock, and its fd 3 may be anything).
const (
	lockFD  = 3
	lockEnv = "KUBEVS_LAUNCH_LOCK_FD"
)

// PIDFileName is written beside the launch lock with the supervisor's pid, for uninstall.
const PIDFileName = "supervisor.pid"

// Supervise runs argv (the proxier and its flags) until ctx is done, restarting it with
// backoff whenever it exits, and at once when its binary is replaced on disk (upgrade.go). On
// ctx done it sends SIGTERM to the proxier and waits for it. It holds lock (the launch lock,
// from InheritedLock; may be nil) for its whole life, and writes its pid beside it.
func Supervise(ctx context.Context, argv []string, b Backoff, lock *os.File) error {
	return supervise(ctx, argv, b, lock, DefaultBinaryPoll)
}

func supervise(ctx context.Context, argv []string, b Backoff, lock *os.File, binaryPoll time.Duration) error {
	if len(argv) == 0 {
		return errors.New("supervise: no command")
	}
	logger := klog.FromContext(ctx)
	if lock != nil {
		defer lock.Close()
		if p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", lock.Fd())); err == nil {
			pidFile := filepath.Join(filepath.Dir(p), PIDFileName)
			if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err == nil {
				defer os.Remove(pidFile)
			}
		}
	}
	var wait time.Duration
	for {
		start := time.Now()
		var upgraded <-chan struct{}
		runCtx, stopWatch := context.WithCancel(ctx)
		if id, err := statBinary(argv[0]); err == nil {
			upgraded = watchBinary(runCtx, argv[0], id, binaryPoll)
		} else {
			logger.Error(err, "Not watching the proxier binary for upgrades")
		}
		err := runOnce(ctx, argv, upgraded)
		stopWatch()
		if ctx.Err() != nil {
			logger.Info("Supervisor stopping", "proxier", argv[0])
			return nil
		}
		ran := time.Since(start)
		if exitErr := (*exec.ExitError)(nil); errors.As(err, &exitErr) && exitErr.ExitCode() == nodeapi.ExitYielded {
			// Another proxier (a DaemonSet's) serves the socket: restarting ours would only
			// take it in that one's next restart (proxier/nodeapi/handover.go).
			logger.Info("Proxier yielded the node API socket to another kubevs-proxier; the supervisor stops", "proxier", argv[0])
			return nil
		}
		if errors.Is(err, errUpgraded) {
			logger.Info("Proxier binary replaced on disk; restarted the proxier", "proxier", argv[0], "ran", ran)
			wait = 0
			continue
		}
		wait = b.next(wait, ran)
		logger.Info("Proxier exited; restarting", "proxier", argv[0], "ran", ran, "err", err, "backoff", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// InheritedLock returns the launch lock the launcher passed on fd 3, or nil when this process
// was not started by the launcher. It clears the marker so the proxier does not inherit it.
func InheritedLock() *os.File {
	if os.Getenv(lockEnv) != strconv.Itoa(lockFD) {
		return nil
	}
	_ = os.Unsetenv(lockEnv)
	if _, err := unix.FcntlInt(lockFD, unix.F_GETFD, 0); err != nil {
		return nil
	}
	unix.CloseOnExec(lockFD) // the proxier must not inherit it
	return os.NewFile(lockFD, LaunchLockName)
}

// errUpgraded: runOnce stopped the proxier because its binary was replaced.
var errUpgraded = errors.New("proxier binary replaced on disk")

// runOnce runs argv until it exits, ctx is done (SIGTERM, then SIGKILL after 10 s) or
// upgraded is closed (the same stop; errUpgraded).
func runOnce(ctx context.Context, argv []string, upgraded <-chan struct{}) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(cleanEnv(), nodeapi.SupervisedEnv+"=1") // it yields the socket to a DaemonSet's proxier
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	logger := klog.FromContext(ctx)
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			logger.V(2).Info("Proxier stopped", "proxier", argv[0], "exit", err)
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			err := <-done
			logger.Info("Proxier did not stop within 10s of SIGTERM; killed it", "proxier", argv[0], "exit", err)
		}
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		stop()
		return ctx.Err()
	case <-upgraded:
		stop()
		return errUpgraded
	}
}
