package e2e

// The soak's cold sync fault: the proxier crashes (kill -9); while it is down, s.cold
// Services (KUBEVS_E2E_SOAK_COLD, default 5000), each with a TCP port and an EndpointSlice
// of the fixed backends, are created as fast as the API server takes them; the proxier
// starts, and is killed with SIGKILL again while its first sync is adding their virtual
// servers and addresses (the soak runs it in short steps and counts them between); it starts
// once more and must converge exactly.
// Then the Services are deleted and nothing of them may be left in the kernel.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// coldPerService is the bound's allowance per cold Service for the emulated guest (its
// Service, slice, virtual server, real servers, set member and VIP), on top of a resync.
// Measured on 6 Dec with 5,012 Services at host load 10-14: the restarted proxier had them
// all programmed 30 s after its start (informers 18 s), 6 ms a Service, and one kubevs
// status run took 21.5 s against 4.2 s with 12 Services, 3.5 ms a Service: about 10 ms a
// Service, doubled for a host twice as loaded. (It was 40 ms: a bound of 3m55s for 5,000,
// eight times what was measured.)
const coldPerService = 20 * time.Millisecond

// coldBound bounds the convergence of the proxier started after the kill: a resync, the
// slack, and coldPerService for each cold Service; KUBEVS_E2E_SOAK_COLD_BOUND replaces it.
func (s *soak) coldBound() time.Duration {
	if v := os.Getenv("KUBEVS_E2E_SOAK_COLD_BOUND"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		s.t.Errorf("KUBEVS_E2E_SOAK_COLD_BOUND=%q: not a duration; the default bound applies", v)
	}
	return s.syncPeriod + s.slack + time.Duration(s.cold)*coldPerService
}

// killInColdSync is the fault (see the file's comment).
func (s *soak) killInColdSync(ctx context.Context) (string, error) {
	if s.cold < 10 {
		return "", fmt.Errorf("KUBEVS_E2E_SOAK_COLD=%d: want at least 10 Services", s.cold)
	}
	if err := s.sigkill(); err != nil {
		return "", err
	}
	client, err := s.fastClient()
	if err != nil {
		return "", err
	}
	start := time.Now()
	var measured string
	if s.coldIPs, measured, err = s.createCold(ctx, client); err != nil {
		return "", err
	}
	created := time.Since(start)
	p, err := s.startProxier(ctx)
	if err != nil {
		return "", err
	}
	started := time.Now()
	vs, vips, err := s.waitColdProgress(ctx, p.PID(), p.LogPath)
	if err != nil {
		_ = syscall.Kill(p.PID(), syscall.SIGCONT)
		return "", err
	}
	into := time.Since(started)
	if err := s.sigkill(); err != nil {
		return "", err
	}
	if _, err := s.startProxier(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d Services and slices created in %s with the proxier down (%s); its cold sync killed at %d of %d virtual servers and %d addresses, %s after its start",
		s.cold, created.Round(100*time.Millisecond), measured, vs, s.cold, vips, into.Round(10*time.Millisecond)), nil
}

// sigkill kills the running soak proxier with SIGKILL and waits until it is gone.
func (s *soak) sigkill() error {
	pids, err := s.pids()
	if err != nil {
		return err
	}
	if len(pids) != 1 {
		return fmt.Errorf("want one kubevs-proxier running, found pids %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill kubevs-proxier %d: %w", pids[0], err)
	}
	for deadline := time.Now().Add(30 * time.Second); alive(pids[0]); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("kubevs-proxier %d alive 30s after SIGKILL", pids[0])
		}
	}
	return nil
}

// Steps of the proxier's run while the soak watches its cold sync: it runs coarseStep at a
// time until it logs that its reconciler started (its first sync follows), then fineStep.
const (
	coarseStep = 20 * time.Millisecond
	fineStep   = 2 * time.Millisecond
	// coldStartBound bounds the stepped proxier's start, up to "Reconciler started".
	coldStartBound = 3 * time.Minute
)

// waitColdProgress lets the proxier (pid) run in short steps (SIGCONT, a sleep, SIGSTOP: it
// cannot get ahead of the watch, however the emulated guest schedules the soak) until its
// cold sync has added some but not all of the cold virtual servers and addresses, and
// returns them counted, leaving the proxier stopped. (Polling alone missed the sync of 150
// Services, added between two polls when the soak process stalled.)
func (s *soak) waitColdProgress(ctx context.Context, pid int, logPath string) (vs, vips int, err error) {
	want := map[string]bool{}
	for ip := range s.coldIPs {
		a := netip.MustParseAddr(ip).As4()
		want[fmt.Sprintf("%08X", binary.BigEndian.Uint32(a[:]))] = true
	}
	// Until the reconciler has started (informers, Start: tens of seconds in a loaded
	// emulated guest, stepped) the wait is coldStartBound; from then on, coldBound.
	deadline := time.Now().Add(coldStartBound)
	step := coarseStep
	for ctx.Err() == nil {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			return 0, 0, fmt.Errorf("kubevs-proxier %d ended during its cold sync: %w", pid, err)
		}
		time.Sleep(step)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return 0, 0, fmt.Errorf("kubevs-proxier %d ended during its cold sync: %w", pid, err)
		}
		if !alive(pid) {
			return 0, 0, fmt.Errorf("kubevs-proxier %d ended during its cold sync", pid)
		}
		b, err := os.ReadFile("/proc/net/ip_vs")
		if err != nil {
			return 0, 0, fmt.Errorf("read /proc/net/ip_vs: %w", err)
		}
		vs = countVirtualServers(string(b), want)
		if vips, err = countAddrs("kube-ipvs0", s.coldIPs); err != nil {
			return 0, 0, err
		}
		switch {
		case vs == len(want) && vips == len(want):
			return vs, vips, fmt.Errorf("the cold sync added all %d virtual servers and addresses within one step of %s", vs, step)
		case vs > 0 || vips > 0:
			return vs, vips, nil
		}
		if step == coarseStep {
			if log, err := os.ReadFile(logPath); err == nil && strings.Contains(string(log), "Reconciler started") {
				step = fineStep
				deadline = time.Now().Add(s.coldBound())
			}
		}
		if time.Now().After(deadline) {
			if step == coarseStep {
				return 0, 0, fmt.Errorf("cold sync: the proxier's reconciler had not started after %s", coldStartBound)
			}
			return 0, 0, fmt.Errorf("cold sync: no virtual server of the cold Services %s after the reconciler started", s.coldBound())
		}
	}
	return 0, 0, ctx.Err()
}

// countAddrs counts the addresses of link that are in ips.
func countAddrs(link string, ips map[string]bool) (int, error) {
	ifi, err := net.InterfaceByName(link)
	if err != nil {
		return 0, nil // not there yet
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return 0, fmt.Errorf("addresses of %s: %w", link, err)
	}
	n := 0
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && ips[p.Addr().String()] {
			n++
		}
	}
	return n, nil
}

// countVirtualServers counts the IPv4 virtual servers of /proc/net/ip_vs ("TCP  0A600001:0050
// rr") whose address (hex) is in want.
func countVirtualServers(text string, want map[string]bool) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || (f[0] != "TCP" && f[0] != "UDP" && f[0] != "SCTP") {
			continue
		}
		if addr, _, ok := strings.Cut(f[1], ":"); ok && want[addr] {
			n++
		}
	}
	return n
}

// deleteCold deletes the cold Services and their slices once the proxier converged with them,
// and waits until nothing of them is left in the kernel and kubevs status exits 0: all of it
// before the next fault is injected, which must find the node as it was before the cold sync
// (a run whose slice deletion failed left 5,000 Services behind, and the next two faults were
// judged on a node syncing them: rollout 46 s, filter flush 42 s, a kubevs status 20-32 s).
func (s *soak) deleteCold(ctx context.Context, _ *faultResult) (string, error) {
	client, err := s.fastClient()
	if err != nil {
		return "", err
	}
	start := time.Now()
	measured, err := s.deleteColdObjects(ctx, client)
	if err != nil {
		return measured, fmt.Errorf("delete the cold objects: %w", err)
	}
	// The bound runs from the last delete: the deletes themselves took 80 s of 87 for 300
	// Services at host load 10, and 38 virtual servers were still there then.
	deletedAt := time.Now()
	deleted := deletedAt.Sub(start)
	bound := s.coldBound()
	var leaks []string
	for {
		if leaks, err = churnLeaks(ctx, s.coldIPs); err != nil {
			return measured, err
		}
		if len(leaks) == 0 {
			break
		}
		if time.Since(deletedAt) > bound {
			return measured, fmt.Errorf("%d kernel objects of the deleted cold Services left %s after their deletion, e.g. %s",
				len(leaks), bound, strings.Join(leaks[:min(5, len(leaks))], "; "))
		}
		time.Sleep(time.Second)
	}
	gone := time.Since(deletedAt)
	inSync := s.expectInSync(ctx, "after the cold Services were deleted")
	s.coldIPs = nil
	return fmt.Sprintf("deleted in %s (%s), none left in the kernel %s after the last delete, status 0 %s later",
		deleted.Round(100*time.Millisecond), measured, gone.Round(100*time.Millisecond), inSync.Round(100*time.Millisecond)), nil
}
