package bed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// Process is a long-running component started by the bed (etcd, kube-apiserver, the proxier),
// with stdout and stderr going to LogDir/NAME.log.
type Process struct {
	// Name names the component and its log file.
	Name string
	// LogPath is the file holding its output.
	LogPath string

	// ReadyAfter is how long the process took to pass its readiness check (zero if it had
	// none, or has not passed it).
	ReadyAfter time.Duration

	started time.Time
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // set before done is closed
}

// StartProcess starts bin with args, logging to logDir/name.log. The process runs in its own
// process group so that Stop also ends anything it spawned, in the node's network namespace
// whatever thread calls StartProcess, and is killed if the test binary dies.
func StartProcess(ctx context.Context, logDir, name, bin string, args ...string) (*Process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	klog.FromContext(ctx).V(2).Info("Started", "component", name, "pid", cmd.Process.Pid, "log", logPath)
	p := &Process{Name: name, LogPath: logPath, started: time.Now(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pdeathsig fires when the thread that forked the child ends, not the process. Go ends any
// thread whose goroutine exits while locked to it (package netns does that on purpose), so
// children are forked from one dedicated thread that lives as long as the test binary. It
// stays in the namespace the process started in: the node's.
var (
	spawnOnce sync.Once
	spawnReq  chan func()
)

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: this thread must not end
			for f := range spawnReq {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReq <- func() { errc <- cmd.Start() }
	return <-errc
}

// PID is the process id of the component (the leader of its process group), for reading
// its /proc entries.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, waits up to grace for the process to end, then
// kills the group. It returns nil for a process that ended by the signal; Stop may be called
// more than once.
func (p *Process) Stop(grace time.Duration) error {
	if exited, _ := p.Exited(); !exited {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Whatever the leader left behind in its group goes too.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	var exitErr *exec.ExitError
	if errors.As(p.err, &exitErr) && exitErr.Sys().(syscall.WaitStatus).Signaled() {
		return nil
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w (log %s)", p.Name, p.err, p.LogPath)
	}
	return nil
}

// Tail returns the last n bytes of the process's log, for error messages.
func (p *Process) Tail(n int64) string {
	return tailFile(p.LogPath, n)
}

func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, 0)
	}
	buf := make([]byte, n)
	k, _ := f.Read(buf)
	return string(buf[:k])
}

// poll calls cond every interval until it returns nil, the process (if given) exits, or
// timeout passes; the error then names the last reason cond gave.
func poll(ctx context.Context, what string, timeout, interval time.Duration, proc *Process, cond func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		last := cond(ctx)
		if last == nil {
			if proc != nil {
				proc.ReadyAfter = time.Since(proc.started)
			}
			return nil
		}
		if proc != nil {
			if exited, perr := proc.Exited(); exited {
				return fmt.Errorf("wait for %s: %s exited (%w); log tail:\n%s", what, proc.Name, perr, proc.Tail(2048))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %w)", what, ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}
