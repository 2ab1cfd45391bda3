package e2e

// The soak's rollout fault: a new kubevs-proxier binary put in place by an atomic rename
// (a copy of the same build), then the old proxier stopped with SIGTERM and the new one
// started, as a DaemonSet update does. The new proxier must adopt what the kernel holds, not
// rebuild it: kube-ipvs0 keeps its index and the fixed Services' virtual servers keep their
// connection counters (a virtual server deleted and added again starts again from zero);
// the soak's established flows must not break.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// terminationGrace is how long a DaemonSet's pod has between SIGTERM and SIGKILL (the
// default terminationGracePeriodSeconds).
const terminationGrace = 30 * time.Second

// pids lists the running soak proxiers (and the bed's, should one run).
func (s *soak) pids() ([]int, error) { return pidsOf(s.binary, proxier.Binary) }

// copyExecutable copies src to dst, mode 0755, through a temporary file in dst's directory
// renamed over dst: dst is replaced at once, and a process running the old dst keeps it.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy executable: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".new-*")
	if err != nil {
		return fmt.Errorf("copy executable %s: %w", src, err)
	}
	_, err = io.Copy(tmp, in)
	err = errors.Join(err, tmp.Chmod(0o755), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("copy executable %s to %s: %w", src, dst, err)
	}
	return nil
}

// replaceBinary puts a new kubevs-proxier in place of the running one's file, stops the
// running one with SIGTERM (it must end within terminationGrace) and starts the new one.
func (s *soak) replaceBinary(ctx context.Context) (string, error) {
	mark, err := readAdoption(ctx, s.own)
	if err != nil {
		return "", err
	}
	s.adoption = mark
	old := s.cur
	if exited, err := old.Exited(); exited {
		return "", fmt.Errorf("the soak's kubevs-proxier %d is not running: %v", old.PID(), err)
	}
	if err := copyExecutable(proxier.Binary, s.binary); err != nil {
		return "", err
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", old.PID()))
	if err != nil || exe != s.binary+" (deleted)" {
		return "", fmt.Errorf("after the rename, kubevs-proxier %d runs %q (%v), not the replaced %s", old.PID(), exe, err, s.binary)
	}
	start := time.Now()
	if err := syscall.Kill(old.PID(), syscall.SIGTERM); err != nil {
		return "", fmt.Errorf("SIGTERM kubevs-proxier %d: %w", old.PID(), err)
	}
	for {
		exited, err := old.Exited()
		if exited && err != nil {
			return "", fmt.Errorf("kubevs-proxier %d ended with %w after SIGTERM; log:\n%s", old.PID(), err, old.Tail(2000))
		}
		if exited {
			break
		}
		if time.Since(start) > terminationGrace {
			return "", fmt.Errorf("kubevs-proxier %d still running %s after SIGTERM", old.PID(), terminationGrace)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopped := time.Since(start)
	p, err := s.startProxier(ctx)
	if err != nil {
		return "", err
	}
	// The child may still be the forked test binary for a moment (seen in the emulated guest).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID()))
		if err == nil && exe == s.binary {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the new kubevs-proxier %d runs %q (%v), not %s", p.PID(), exe, err, s.binary)
		}
	}
	return fmt.Sprintf("old proxier ended %s after SIGTERM", stopped.Round(10*time.Millisecond)), nil
}

// adoptionMark is what tells an adopted kernel state from a rebuilt one.
type adoptionMark struct {
	ifindex int
	// conns is each fixed virtual server's connection counter ("TCP 10.96.0.10:80").
	conns map[string]uint64
}

func readAdoption(ctx context.Context, o owned) (adoptionMark, error) {
	var m adoptionMark
	b, err := os.ReadFile("/sys/class/net/kube-ipvs0/ifindex")
	if err != nil {
		return m, fmt.Errorf("kube-ipvs0's index: %w", err)
	}
	if m.ifindex, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		return m, fmt.Errorf("kube-ipvs0's index %q: %w", b, err)
	}
	text, err := runCmd(ctx, "ipvsadm", "-Ln", "--stats", "--exact")
	if err != nil {
		return m, err
	}
	m.conns = parseConns(text, o)
	if len(m.conns) == 0 {
		return m, fmt.Errorf("ipvsadm -Ln --stats: no virtual server of the soak's Services:\n%s", text)
	}
	return m, nil
}

// parseConns reads the owned virtual servers' connection counters from `ipvsadm -Ln --stats
// --exact` (real servers' lines begin with "->").
func parseConns(text string, o owned) map[string]uint64 {
	out := map[string]uint64{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || (f[0] != "TCP" && f[0] != "UDP" && f[0] != "SCTP") || !o.vsNamed(f[1]) {
			continue
		}
		if n, err := strconv.ParseUint(f[2], 10, 64); err == nil {
			out[f[0]+" "+f[1]] = n
		}
	}
	return out
}

// adopted checks, once the rollout is repaired, that the new proxier kept kube-ipvs0 and
// every fixed virtual server with its counters.
func (s *soak) adopted(ctx context.Context, _ *faultResult) (string, error) {
	now, err := readAdoption(ctx, s.own)
	if err != nil {
		return "", err
	}
	var errs []error
	if now.ifindex != s.adoption.ifindex {
		errs = append(errs, fmt.Errorf("kube-ipvs0 was recreated: index %d, then %d", s.adoption.ifindex, now.ifindex))
	}
	for _, k := range keysOf(s.adoption.conns) {
		before := s.adoption.conns[k]
		after, ok := now.conns[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("virtual server %s is gone", k))
		case after < before:
			errs = append(errs, fmt.Errorf("virtual server %s was recreated: its connections went from %d to %d", k, before, after))
		}
	}
	return fmt.Sprintf("state adopted: kube-ipvs0 kept, %d virtual servers kept their counters", len(s.adoption.conns)), errors.Join(errs...)
}

// dumpProxierStacks sends SIGQUIT to the running kubevs-proxier, whose Go runtime then writes
// every goroutine's stack to its log and exits: what it was doing when the soak failed.
func (s *soak) dumpProxierStacks() {
	pids, err := s.pids()
	if err != nil {
		s.t.Log(err)
		return
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGQUIT); err == nil {
			s.t.Logf("sent SIGQUIT to kubevs-proxier %d: its goroutines are in its log", pid)
		}
		for i := 0; i < 100 && alive(pid); i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
}
