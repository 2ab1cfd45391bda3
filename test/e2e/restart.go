package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kubevs/kubevs/test/bed"
)

// Proxiers that scenarios started in place of the bed's own; stopProxiers ends them with the
// suite.
var (
	restartedMu sync.Mutex
	restarted   []*bed.Process
)

// proxierPIDs lists the running processes whose executable is the bed's kubevs-proxier.
func proxierPIDs() ([]int, error) { return pidsOf(proxier.Binary) }

// pidsOf lists the running processes whose executable is one of exes (also when that file
// was replaced or removed since the process started).
func pidsOf(exes ...string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && slices.Contains(exes, strings.TrimSuffix(exe, " (deleted)")) {
			out = append(out, pid)
		}
	}
	return out, nil
}

// killProxier sends SIGKILL to the running kubevs-proxier and waits until it is gone.
func (f *Framework) killProxier() {
	f.t.Helper()
	pids, err := proxierPIDs()
	if err != nil {
		f.t.Fatal(err)
	}
	if len(pids) != 1 {
		f.t.Fatalf("want one kubevs-proxier running, found pids %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		f.t.Fatalf("kill kubevs-proxier %d: %v", pids[0], err)
	}
	f.expectNoProxier(fmt.Sprintf("kubevs-proxier %d ends", pids[0]))
}

// expectNoProxier waits until no kubevs-proxier process is left on the node.
func (f *Framework) expectNoProxier(what string) {
	f.t.Helper()
	f.Eventually(what, func(context.Context) error {
		left, err := proxierPIDs()
		if err != nil {
			return err
		}
		if len(left) != 0 {
			return fmt.Errorf("still running: %v", left)
		}
		return nil
	})
}

// startProxier starts kubevs-proxier again as the bed did and waits for its /readyz. It runs
// until the suite ends.
func (f *Framework) startProxier() {
	f.t.Helper()
	p, err := bed.StartProcess(f.ctx, f.Bed.LogDir, fmt.Sprintf("kubevs-proxier-restarted-%s", f.Namespace), proxier.Binary, proxier.Args(f.Bed)...)
	if err != nil {
		f.t.Fatalf("start kubevs-proxier again: %v", err)
	}
	restartedMu.Lock()
	restarted = append(restarted, p)
	restartedMu.Unlock()
	f.Eventually("the restarted kubevs-proxier is ready", func(ctx context.Context) error {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("exited: %w; log:\n%s", err, p.Tail(2000))
		}
		return httpOK(ctx, proxierReadyz)
	})
}

// stopProxiers stops the proxiers scenarios started.
func stopProxiers() error {
	restartedMu.Lock()
	defer restartedMu.Unlock()
	var errs []error
	for _, p := range restarted {
		errs = append(errs, p.Stop(10*time.Second))
	}
	restarted = nil
	return errors.Join(errs...)
}

// pluginSocketDir holds the node API socket and the supervisor's files (the plugin's default
// socket /run/kubevs/proxier.sock, which the bed's proxier also uses).
const pluginSocketDir = "/run/kubevs"

// signalSupervisor sends SIGTERM to the pid in <socket dir>/supervisor.pid and returns it;
// 0 when there is no pid file or that process is gone.
func signalSupervisor() (int, error) {
	pid, err := supervisorPID()
	if err != nil || pid == 0 {
		return 0, err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return 0, nil
		}
		return 0, fmt.Errorf("stop supervisor %d: %w", pid, err)
	}
	return pid, nil
}

// supervisorPID reads <socket dir>/supervisor.pid; 0 when there is none.
func supervisorPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(pluginSocketDir, "supervisor.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read supervisor pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("supervisor pid %q: %w", b, err)
	}
	return pid, nil
}

// stopLaunched stops a supervisor the plugin launched and still runs at the suite's end, and
// waits (30 s at most) until it is gone.
func stopLaunched(ctx context.Context) error {
	pid, err := signalSupervisor()
	if err != nil || pid == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for alive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("supervisor %d still running 30s after SIGTERM", pid)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// alive reports whether process pid exists and is not a zombie (in the VM the suite may be
// init, which reaps no orphans).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
