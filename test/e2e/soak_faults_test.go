package e2e

// The soak's faults: what real nodes do to a proxier and its kernel state. Each names how
// kubevs is meant to repair it, which sets the bound on its time to repair.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kubevs/kubevs/test/bed"
)

// repairBy is what repairs a fault.
type repairBy int

const (
	// byResync: the next full sync (within syncPeriod).
	byResync repairBy = iota
	// byEvent: a kernel event the proxier watches (at once).
	byEvent
	// byRestart: the restarted proxier's first sync.
	byRestart
	// byNothing: the fault touches no state kubevs keeps; traffic must simply go on.
	byNothing
	// byReconnect: the proxier's watches reconnect once kube-apiserver is back.
	byReconnect
)

func (r repairBy) String() string {
	return [...]string{"resync", "event", "restart", "none", "reconnect"}[r]
}

// fault is one kind of fault the soak injects.
type fault struct {
	name   string
	repair repairBy
	// counted: the proxier's kubevs_drift_repaired_total must grow with the repair.
	counted bool
	// once: injected in the first round only (it is long: objects by the thousand).
	once   bool
	inject func(s *soak, ctx context.Context) (detail string, err error)
	// prepare, when set, runs before the kernel snapshot the repair is compared with, outside
	// the fault window: what the fault needs to exist first.
	prepare func(s *soak, ctx context.Context) error
	// bound, when set, replaces the bound the repair kind gives.
	bound func(s *soak) time.Duration
	// after, when set, runs once the fault is repaired, outside its window: the fault's own
	// checks and cleanup. Its text is added to the row's detail; its error fails the soak at
	// its end, or at once if cleans is set.
	after func(s *soak, ctx context.Context, r *faultResult) (string, error)
	// cleans: after removes what the fault added (the cold sync's thousands of Services). When
	// it fails, the soak reports its table and stops: a later fault would be judged on a node
	// still holding them.
	cleans bool
}

var soakFaults = []fault{
	{name: "kill -9 proxier", repair: byRestart, inject: (*soak).killAfterBurst},
	{name: "flush KUBE-* nat", repair: byResync, counted: true, inject: func(s *soak, ctx context.Context) (string, error) {
		return s.flushChains(ctx, "nat")
	}},
	{name: "flush KUBE-* filter", repair: byResync, counted: true, inject: func(s *soak, ctx context.Context) (string, error) {
		return s.flushChains(ctx, "filter")
	}},
	{name: "ip link del kube-ipvs0", repair: byEvent, inject: func(_ *soak, ctx context.Context) (string, error) {
		_, err := runCmd(ctx, "ip", "link", "del", "kube-ipvs0")
		return "", err
	}},
	{name: "ipset flush", repair: byResync, counted: true, inject: (*soak).flushSet},
	{name: "ipvsadm -D", repair: byResync, counted: true, inject: (*soak).deleteVirtualServer},
	{name: "conntrack -F", repair: byNothing, inject: func(_ *soak, ctx context.Context) (string, error) {
		_, err := runCmd(ctx, "conntrack", "-F")
		if err == nil {
			_, err = runCmd(ctx, "conntrack", "-F", "-f", "ipv6")
		}
		return "", err
	}},
	{name: "kube-apiserver down", repair: byReconnect, inject: (*soak).apiServerDown},
	{name: "endpoint churn 100/s", repair: byNothing, prepare: (*soak).enoughChurned, inject: (*soak).endpointChurn, after: (*soak).trafficWentOn},
	{name: "binary replaced, rolled out", repair: byRestart, inject: (*soak).replaceBinary, after: (*soak).adopted},
	{name: "supervisor restart (launch mode)", repair: byRestart, inject: (*soak).supervisorRestart, after: (*soak).adopted},
	{name: "kill -9 in a cold sync", repair: byRestart, once: true, inject: (*soak).killInColdSync, bound: (*soak).coldBound, after: (*soak).deleteCold, cleans: true},
}

// selectFaults returns the faults KUBEVS_E2E_SOAK_FAULTS names (comma-separated, each a
// case-insensitive part of a fault's name: "churn,binary,cold"), all when it is unset.
func selectFaults(spec string) ([]fault, error) {
	if strings.TrimSpace(spec) == "" {
		return soakFaults, nil
	}
	var out []fault
	for _, part := range strings.Split(spec, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		found := false
		for _, fl := range soakFaults {
			if part != "" && strings.Contains(strings.ToLower(fl.name), part) {
				found = true
				if !slices.ContainsFunc(out, func(o fault) bool { return o.name == fl.name }) {
					out = append(out, fl)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("KUBEVS_E2E_SOAK_FAULTS=%q: %q names no fault", spec, part)
		}
	}
	return out, nil
}

// killAfterBurst makes a burst of changes and kills the proxier with SIGKILL at once, while
// it is applying them, then starts it again after a random delay, as the kubelet restarts a
// crashed container.
func (s *soak) killAfterBurst(ctx context.Context) (string, error) {
	n := 10 + s.rng.IntN(30)
	if err := s.churn.burst(ctx, n); err != nil {
		return "", err
	}
	pids, err := s.pids()
	if err != nil {
		return "", err
	}
	if len(pids) != 1 {
		return "", fmt.Errorf("want one kubevs-proxier running, found pids %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		return "", fmt.Errorf("kill kubevs-proxier %d: %w", pids[0], err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for alive(pids[0]) {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("kubevs-proxier %d alive 30s after SIGKILL", pids[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	delay := time.Duration(s.rng.IntN(2000)) * time.Millisecond
	time.Sleep(delay) // the restart delay being simulated, not a wait for readiness
	if _, err := s.startProxier(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("after %d changes, restarted %s later", n, delay), nil
}

// startProxier starts the soak's kubevs-proxier (its copy of the bed's binary, with the
// soak's config) and returns at once; the suite stops it at its end.
func (s *soak) startProxier(ctx context.Context) (*bed.Process, error) {
	s.starts++
	args := proxier.Args(s.f.Bed)
	for i, a := range args {
		if strings.HasPrefix(a, "--config=") {
			args[i] = "--config=" + s.config
		}
	}
	args = append(args, "--v=2") // each sync logged: the evidence for a failed probe (soak_evidence_test.go)
	p, err := bed.StartProcess(ctx, s.f.Bed.LogDir, fmt.Sprintf("kubevs-proxier-soak-%d", s.starts), s.binary, args...)
	if err != nil {
		return nil, fmt.Errorf("start kubevs-proxier: %w", err)
	}
	s.cur = p
	restartedMu.Lock()
	restarted = append(restarted, p)
	restartedMu.Unlock()
	return p, nil
}

// flushChains flushes every KUBE-* chain of table, IPv4 (three times in four) or IPv6, as
// another agent's `iptables -F` or a firewall reload does.
func (s *soak) flushChains(ctx context.Context, table string) (string, error) {
	save, cmd := "iptables-save", "iptables"
	if s.rng.IntN(4) == 0 {
		save, cmd = "ip6tables-save", "ip6tables"
	}
	text, err := runCmd(ctx, save, "-t", table)
	if err != nil {
		return "", err
	}
	var chains []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, ":KUBE-") {
			chains = append(chains, strings.Fields(l)[0][1:])
		}
	}
	if len(chains) == 0 {
		return "", fmt.Errorf("%s -t %s: no KUBE-* chain to flush", save, table)
	}
	for _, c := range chains {
		if _, err := runCmd(ctx, cmd, "-t", table, "-F", c); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%s: %d chains", cmd, len(chains)), nil
}

// flushSet flushes one KUBE-* set holding members of the fixed Services.
func (s *soak) flushSet(ctx context.Context) (string, error) {
	text, err := runCmd(ctx, "ipset", "save")
	if err != nil {
		return "", err
	}
	var sets []string
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "add" && strings.HasPrefix(f[1], "KUBE-") && !containsStr(sets, f[1]) &&
			anyOwned(s.own, strings.Split(f[2], ",")) {
			sets = append(sets, f[1])
		}
	}
	if len(sets) == 0 {
		return "", errors.New("ipset save: no KUBE-* set holds a member of the soak's Services")
	}
	name := sets[s.rng.IntN(len(sets))]
	_, err = runCmd(ctx, "ipset", "flush", name)
	return name, err
}

// deleteVirtualServer deletes one virtual server of the fixed Services. The kernel drops
// its connections with it, a tick after the deletion (expire_nodest_conn=1), so no repair
// can save them: an established flow through it ends at its next packet (see
// faultResult.ends; the rule is pinned by proxier/ipvs TestDeletedVirtualServer*), new
// connections must work again within one resync.
func (s *soak) deleteVirtualServer(ctx context.Context) (string, error) {
	text, err := runCmd(ctx, "ipvsadm", "-Sn")
	if err != nil {
		return "", err
	}
	var vss [][2]string
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "-A" && s.own.vsNamed(f[2]) {
			vss = append(vss, [2]string{f[1], f[2]})
		}
	}
	if len(vss) == 0 {
		return "", errors.New("ipvsadm -Sn: no virtual server of the soak's Services")
	}
	vs := vss[s.rng.IntN(len(vss))]
	if proto := map[string]string{"-t": "tcp", "-u": "udp"}[vs[0]]; proto != "" {
		s.ends = []string{proto + " " + vs[1]}
	}
	_, err = runCmd(ctx, "ipvsadm", "-D", vs[0], vs[1])
	return vs[0] + " " + vs[1], err
}

// apiServerDown stops kube-apiserver for a random time up to s.apiDown and starts it again;
// it returns once the API server is ready.
func (s *soak) apiServerDown(ctx context.Context) (string, error) {
	down := s.apiDown/2 + time.Duration(s.rng.Int64N(int64(s.apiDown/2)+1))
	start := time.Now()
	if err := s.f.Bed.RestartAPIServerAfter(ctx, down); err != nil {
		return "", err
	}
	return fmt.Sprintf("down %s, ready again after %s", down.Round(time.Second), time.Since(start).Round(time.Second)), nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func anyOwned(o owned, parts []string) bool {
	for _, p := range parts {
		if o.names(p) {
			return true
		}
	}
	return false
}

// runStatus runs `kubevs status` once and returns its exit code and output.
func (s *soak) runStatus(ctx context.Context) (int, string) {
	// A run lists every Service: longer with the cold sync's thousands.
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second+time.Duration(len(s.coldIPs))*20*time.Millisecond)
	defer cancel()
	code, out, err := s.f.runKubevsStatus(ctx)
	if err != nil {
		return -1, err.Error()
	}
	return code, out
}
