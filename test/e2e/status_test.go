package e2e

// `kubevs status` against the bed: in sync after the proxier's sync; drift named when a real
// server is removed by hand, and when a KUBE-* chain is flushed and a set member deleted; in
// sync again after the proxier's periodic resync repairs each.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ipvsHasRealServer reports whether ipvsadm lists a real server at addr (IP:PORT) under any
// virtual server.
func ipvsHasRealServer(ctx context.Context, addr string) (bool, error) {
	out, err := exec.CommandContext(ctx, "ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("ipvsadm -Ln: %w: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "->" && fields[1] == addr {
			return true, nil
		}
	}
	return false, nil
}

// runKubevsStatus runs `kubevs status` for the bed's node and returns its exit code and output.
func (f *Framework) runKubevsStatus(ctx context.Context) (int, string, error) {
	bin := filepath.Join(os.Getenv("KUBEVS_BIN"), "kubevs")
	ctx, cancel := context.WithTimeout(ctx, 150*time.Second)
	defer cancel()
	// The proxier's own configuration: its clusterCIDRs decide the masquerade rules. Under
	// TCG on a loaded host one iptables-save can take seconds: generous bounds, still bounds.
	cmd := exec.CommandContext(ctx, bin, "status", "--kubeconfig", f.Bed.Kubeconfig, "--node", f.Bed.NodeName(), "--config", proxierConfigPath,
		"--timeout", "120s", "--step-timeout", "60s")
	// A run that outlives its deadline gets SIGQUIT: Go prints every goroutine's stack, so
	// the failure shows where it blocked.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out), nil
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out), nil
	default:
		return -1, string(out), fmt.Errorf("run %s status: %w", bin, err)
	}
}

// timeReads times the tools behind the status reads, each on its own, for a run that failed.
func timeReads(ctx context.Context) string {
	var b strings.Builder
	for _, c := range [][]string{
		{"iptables-save", "-t", "filter"}, {"iptables-save", "-t", "nat"},
		{"ip6tables-save", "-t", "filter"}, {"ip6tables-save", "-t", "nat"},
		{"ipset", "list", "-n"}, {"ps", "-eo", "pid,stat,etime,wchan:32,args"},
	} {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		start := time.Now()
		out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput()
		cancel()
		fmt.Fprintf(&b, "$ %s: %v, %d bytes, in %v\n", strings.Join(c, " "), err, len(out), time.Since(start).Round(time.Millisecond))
		if c[0] == "ps" {
			b.Write(out)
		}
	}
	return b.String()
}

// expectKubevsStatus waits until `kubevs status` exits with code and its output holds every one of
// want.
func (f *Framework) expectKubevsStatus(code int, want ...string) string {
	f.t.Helper()
	var last string
	f.Eventually(fmt.Sprintf("kubevs status exits %d naming %q", code, want), func(ctx context.Context) error {
		got, out, err := f.runKubevsStatus(ctx)
		last = out
		if err != nil {
			return err
		}
		if got == 2 { // an error, or a run that timed out: keep every one, not only the last
			f.t.Logf("kubevs status exited 2:\n%s\n%s", out, timeReads(ctx))
		}
		if got != code {
			return fmt.Errorf("exit %d:\n%s", got, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Errorf("exit %d but no %q in:\n%s", got, w, out)
			}
		}
		return nil
	})
	return last
}

// expectDriftSeen breaks the node (breakIt), runs kubevs status and wants exit 1 naming every
// one of want. The proxier's periodic resync may repair the node between the break and the
// read (broken then reports false): it breaks it again then, up to three times.
func (f *Framework) expectDriftSeen(what string, breakIt func() error, broken func() bool, want ...string) {
	f.t.Helper()
	for attempt := 1; attempt <= 3; attempt++ {
		if err := breakIt(); err != nil {
			f.t.Fatalf("%s: %v", what, err)
		}
		code, out, err := f.runKubevsStatus(f.ctx)
		if err != nil {
			f.t.Fatal(err)
		}
		if !broken() {
			f.t.Logf("%s, attempt %d: the proxier repaired it before kubevs status finished (exit %d)", what, attempt, code)
			if code == 2 {
				f.t.Logf("kubevs status exited 2:\n%s\n%s", out, timeReads(f.ctx))
			}
			continue
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(out, w) })
		if code != 1 || len(missing) > 0 {
			if code == 2 {
				out += "\n" + timeReads(f.ctx)
			}
			f.t.Fatalf("kubevs status after %s: exit %d, want 1 naming %q:\n%s", what, code, missing, out)
		}
		f.t.Logf("kubevs status after %s (exit 1):\n%s", what, out)
		return
	}
	f.t.Fatalf("%s: the proxier repaired it each time before kubevs status could read the kernel", what)
}

// nodeRun runs a command on the node and returns its trimmed combined output.
func nodeRun(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func TestKubevsStatusReportsDrift(t *testing.T) {
	RequirePlugin(t) // the kubevs binary is built with the plugin
	f := New(t)
	svc := f.CreateService("stat")
	pods := f.CreatePods("stat", 2)
	f.ExpectHTTP(f.FromNode(), ServiceURL(svc, "/hostname")).Hostname(pods...)

	out := f.expectKubevsStatus(0, f.Namespace+"/stat")
	t.Logf("kubevs status in sync:\n%s", out)

	// Remove one real server behind the kernel's back.
	vs := net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(portNamed(svc, "http").Port))
	rs := net.JoinHostPort(pods[0].IP.String(), fmt.Sprint(pods[0].HTTPPort()))
	restore := func() {
		if has, _ := ipvsHasRealServer(f.ctx, rs); !has {
			_ = exec.Command("ipvsadm", "-a", "-t", vs, "-r", rs, "-m").Run()
		}
	}
	t.Cleanup(restore)
	// kubevs status must see the drift at least once: the proxier's periodic resync may
	// repair the real server between the delete and the read, so try again then.
	seen := false
	for attempt := 1; attempt <= 3 && !seen; attempt++ {
		if out, err := exec.CommandContext(f.ctx, "ipvsadm", "-d", "-t", vs, "-r", rs).CombinedOutput(); err != nil {
			t.Fatalf("ipvsadm -d -t %s -r %s: %v: %s", vs, rs, err, out)
		}
		code, out, err := f.runKubevsStatus(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if has, _ := ipvsHasRealServer(f.ctx, rs); has {
			t.Logf("attempt %d: the proxier repaired %s before kubevs status finished (exit %d)", attempt, rs, code)
			continue
		}
		if code != 1 || !strings.Contains(out, rs) {
			t.Fatalf("kubevs status with %s removed from %s: exit %d, want 1 naming %s:\n%s", rs, vs, code, rs, out)
		}
		t.Logf("kubevs status with %s removed (exit 1):\n%s", rs, out)
		seen = true
	}
	if !seen {
		t.Fatalf("the proxier repaired %s each time before kubevs status could read the kernel", rs)
	}

	// The proxier's periodic full sync puts it back.
	f.expectKubevsStatus(0, f.Namespace+"/stat")
	f.ExpectHTTP(f.FromNode(), ServiceURL(svc, "/hostname")).Hostname(pods...)

	// The fixed state: flush a KUBE-* chain and delete the Service's member of a set, as a
	// firewall reload or a stray `ipset del` would. IPVS alone looks fine then.
	const set, chain = "KUBE-CLUSTER-IP", "KUBE-SERVICES"
	member := fmt.Sprintf("%s,tcp:%d", svc.Spec.ClusterIP, portNamed(svc, "http").Port)
	t.Cleanup(func() { _, _ = nodeRun(context.Background(), "ipset", "add", "-exist", set, member) })
	breakIt := func() error {
		if _, err := nodeRun(f.ctx, "iptables", "-t", "nat", "-F", chain); err != nil {
			return err
		}
		_, err := nodeRun(f.ctx, "ipset", "del", "-exist", set, member)
		return err
	}
	broken := func() bool {
		rules, err := nodeRun(f.ctx, "iptables", "-t", "nat", "-S", chain)
		_, inSet := nodeRun(f.ctx, "ipset", "test", set, member)
		return err == nil && !strings.Contains(rules, "-A "+chain) && inSet != nil
	}
	f.expectDriftSeen("iptables -t nat -F "+chain+" and ipset del "+set+" "+member, breakIt, broken,
		"rules-differ", "inet nat "+chain, "missing-set-member", set+" "+member)
	f.expectKubevsStatus(0, f.Namespace+"/stat")
	f.ExpectHTTP(f.FromNode(), ServiceURL(svc, "/hostname")).Hostname(pods...)
}
