package e2e

// The soak's supervisor fault, launch mode (plugin/launch.go, supervise.go): the DaemonSet's
// proxier (the soak's) dies; CNI STATUS, as a container runtime calls it, launches the
// plugin's supervisor, which starts a proxier of its own; the supervisor is killed with
// SIGKILL (its proxier gets SIGTERM from the kernel) and the next STATUS launches another;
// then the DaemonSet's proxier comes back and takes the node API socket, the supervised
// proxier yields and its supervisor ends. The kernel state must stay adopted throughout.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// launchStanza is the bed conflist's kubevs entry (configureKubevs): launch on.
func (s *soak) launchStanza() map[string]any {
	return map[string]any{"launch": map[string]any{
		"enabled":       true,
		"proxierBinary": proxier.Binary,
		"configPath":    launchConfig,
		"logFile":       filepath.Join(s.f.Bed.LogDir, "kubevs-proxier-launched.log"),
	}}
}

// supervisorRestart is the fault (see the file's comment).
func (s *soak) supervisorRestart(ctx context.Context) (string, error) {
	if launchConfig == "" {
		return "", errors.New("the bed's conflist does not launch the proxier")
	}
	mark, err := readAdoption(ctx, s.own)
	if err != nil {
		return "", err
	}
	s.adoption = mark
	if err := s.sigkill(); err != nil {
		return "", err
	}
	start := time.Now()
	sup1, err := s.launchBySTATUS(ctx, 0)
	if err != nil {
		return "", err
	}
	first := time.Since(start)
	if err := syscall.Kill(sup1, syscall.SIGKILL); err != nil {
		return "", fmt.Errorf("kill the supervisor %d: %w", sup1, err)
	}
	if err := s.waitNoProxier(ctx, "the supervised proxier ends with its supervisor", sup1); err != nil {
		return "", err
	}
	start = time.Now()
	sup2, err := s.launchBySTATUS(ctx, sup1)
	if err != nil {
		return "", err
	}
	second := time.Since(start)
	start = time.Now()
	p, err := s.startProxier(ctx)
	if err != nil {
		return "", err
	}
	if err := s.waitOnly(ctx, p.PID(), sup2); err != nil {
		return "", err
	}
	return fmt.Sprintf("STATUS launched supervisor %d, synced in %s; killed; STATUS launched %d, synced in %s; the DaemonSet's proxier took over in %s",
		sup1, first.Round(100*time.Millisecond), sup2, second.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond)), nil
}

// launchBySTATUS calls CNI STATUS until it succeeds (the first call launches a supervisor;
// success means its proxier serves the node API) and returns the supervisor's pid, which must
// not be was.
func (s *soak) launchBySTATUS(ctx context.Context, was int) (int, error) {
	deadline := time.Now().Add(s.syncPeriod + 2*s.slack)
	var last string
	for time.Now().Before(deadline) {
		code, err := cniStatus(ctx, s.launchStanza())
		switch {
		case err != nil:
			last = err.Error()
		case code != 0:
			last = "code " + strconv.Itoa(code)
		default:
			pid, err := supervisorPID()
			if err != nil {
				return 0, err
			}
			if pid == 0 || pid == was || !alive(pid) {
				return 0, fmt.Errorf("CNI STATUS succeeded, but the supervisor pid file says %d (the killed one %d)", pid, was)
			}
			return pid, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return 0, fmt.Errorf("CNI STATUS did not launch a proxier that serves within %s: %s", s.syncPeriod+2*s.slack, last)
}

// waitNoProxier waits until supervisor sup and every kubevs-proxier are gone.
func (s *soak) waitNoProxier(ctx context.Context, what string, sup int) error {
	deadline := time.Now().Add(terminationGrace)
	for ctx.Err() == nil {
		pids, err := s.pids()
		if err != nil {
			return err
		}
		if len(pids) == 0 && !alive(sup) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: after %s, supervisor alive %v, proxiers %v", what, terminationGrace, alive(sup), pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ctx.Err()
}

// waitOnly waits until the only kubevs-proxier is pid and supervisor sup has ended (its
// proxier yielded the socket).
func (s *soak) waitOnly(ctx context.Context, pid, sup int) error {
	deadline := time.Now().Add(s.syncPeriod + 2*s.slack)
	for ctx.Err() == nil {
		pids, err := s.pids()
		if err != nil {
			return err
		}
		if slices.Equal(pids, []int{pid}) && !alive(sup) {
			return nil
		}
		if exited, err := s.cur.Exited(); exited {
			return fmt.Errorf("the DaemonSet's kubevs-proxier %d ended while taking over: %v; log:\n%s", pid, err, s.cur.Tail(2000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, proxiers %v (want only %d), supervisor %d alive %v", s.syncPeriod+2*s.slack, pids, pid, sup, alive(sup))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ctx.Err()
}
