package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubevs/kubevs/plugin"
	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// launchEnv is a harness whose conflist has launch on, with the stand-in proxier.
type launchEnv struct {
	*harness
	pidLog string
	// note records the pids seen so far, so cleanup can kill them whatever happened.
	note func()
}

func newLaunchEnv(t *testing.T) (*launchEnv, string) {
	h := newHarness(t)
	e := &launchEnv{harness: h, pidLog: filepath.Join(h.dir, "proxier.pids")}
	cfg, _ := json.Marshal(fakeProxierConfig{Socket: h.sock, StoreDir: filepath.Join(h.dir, "proxier-regs"), PIDLog: e.pidLog})
	cfgPath := filepath.Join(h.dir, "proxier.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	var mu sync.Mutex
	note := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range append(e.proxierPIDs(), e.supervisorPID()) {
			if p > 0 {
				seen[p] = true
			}
		}
	}
	e.note = note
	t.Cleanup(func() {
		note()
		if sp := e.supervisorPID(); sp > 0 {
			_ = syscall.Kill(sp, syscall.SIGTERM)
			waitGone(sp, 5*time.Second)
		}
		mu.Lock()
		defer mu.Unlock()
		for p := range seen {
			_ = syscall.Kill(p, syscall.SIGKILL)
			waitGone(p, 5*time.Second)
		}
	})
	extra := fmt.Sprintf(`,"launch":{"enabled":true,"configPath":%q,"logFile":%q}`, cfgPath, filepath.Join(h.dir, "proxier.log"))
	return e, extra
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func (e *launchEnv) proxierPIDs() []int {
	b, _ := os.ReadFile(e.pidLog)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func (e *launchEnv) supervisorPID() int {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(e.sock), plugin.PIDFileName))
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// poll waits up to d for cond.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procStat returns the ppid and session id of pid from /proc.
func procStat(t *testing.T, pid int) (ppid, sid int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ppid, _ = strconv.Atoi(f[1])
	sid, _ = strconv.Atoi(f[3])
	return ppid, sid
}

// leakInto makes the test process look like a careless container runtime: proxy and Go
// variables in its environment, and an open descriptor without close-on-exec on a file
// whose name it returns.
func leakInto(t *testing.T) string {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:9")
	t.Setenv("GODEBUG", "http2debug=2")
	t.Setenv("LD_LIBRARY_PATH", "/nonexistent-kubevs")
	canary := filepath.Join(t.TempDir(), "runtime-fd-canary")
	fd, err := syscall.Open(canary, syscall.O_CREAT|syscall.O_RDWR, 0o600) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	// A low soft open files limit, as some runtimes' units set: the proxier must not keep it.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = 1024
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
	wantNoFile = min(plugin.NoFileLimit, lim.Max)
	if os.Geteuid() == 0 && hasCapSysResource() {
		wantNoFile = plugin.NoFileLimit
	}
	return canary
}

// wantNoFile is the soft open files limit the supervisor can reach on this machine.
var wantNoFile uint64

// hasCapSysResource reports whether this process may raise a hard limit.
func hasCapSysResource() bool {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<24) != 0 // CAP_SYS_RESOURCE
		}
	}
	return false
}

// checkConfined: pid (the supervisor or the proxier) has the fixed environment, no
// descriptor on canary, and RLIMIT_NOFILE raised to plugin.NoFileLimit.
func checkConfined(t *testing.T, what string, pid int, canary string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(strings.TrimRight(string(b), "\x00"), "\x00") {
		if kv != "PATH="+plugin.ProxierPATH && (what != "supervisor" || kv != "KUBEVS_LAUNCH_LOCK_FD=3") &&
			(what != "proxier" || kv != nodeapi.SupervisedEnv+"=1") {
			t.Errorf("%s %d: environment has %q", what, pid, kv)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); target == canary {
			t.Errorf("%s %d: fd %s leaked from the runtime (%s)", what, pid, fd.Name(), target)
		}
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	var soft uint64
	for _, line := range strings.Split(string(limits), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			soft, _ = strconv.ParseUint(strings.Fields(rest)[0], 10, 64)
		}
	}
	if soft != wantNoFile {
		t.Errorf("%s %d: open files soft limit %d, want %d", what, pid, soft, wantNoFile)
	}
}

func TestIntegrationLaunch(t *testing.T) {
	canary := leakInto(t)
	e, extra := newLaunchEnv(t)
	l := e.harness.list("1.0.0", extra)
	client := nodeapi.NewClient(e.sock)
	ctx := context.Background()

	// Ten pods at once with no proxier: one launch, every ADD succeeds and is registered.
	const n = 10
	pods := make([]*pod, n)
	for i := range pods {
		pods[i] = e.newPod(fmt.Sprintf("launch%d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, p := range pods {
		wg.Go(func() {
			if _, err := e.add(l, p); err != nil {
				errs <- fmt.Errorf("ADD %s: %w", p.id, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	e.note()
	if pids := e.proxierPIDs(); len(pids) != 1 {
		t.Fatalf("proxier started %d times (%v), want once; plugin log:\n%s", len(pids), pids, e.kubevsLog())
	}
	regs, err := client.List(ctx)
	if err != nil || len(regs) != n {
		t.Fatalf("proxier holds %d registrations (%v), want %d", len(regs), err, n)
	}

	// Detached: the supervisor leads its own session and is nobody's child here.
	sup := e.supervisorPID()
	if sup == 0 {
		t.Fatal("no supervisor pid file")
	}
	if ppid, sid := procStat(t, sup); sid != sup || ppid == os.Getpid() {
		t.Errorf("supervisor %d: ppid %d sid %d; want its own session, not a child of the test", sup, ppid, sid)
	}
	checkConfined(t, "supervisor", sup, canary)
	checkConfined(t, "proxier", e.proxierPIDs()[0], canary)

	// kill -9 of the proxier: the supervisor restarts it and registrations survive.
	first := e.proxierPIDs()[0]
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "proxier restart", func() bool {
		_, err := client.Status(ctx)
		return len(e.proxierPIDs()) == 2 && err == nil
	})
	e.note()
	if regs, err := client.List(ctx); err != nil || len(regs) != n {
		t.Errorf("after restart the proxier holds %d registrations (%v), want %d", len(regs), err, n)
	}

	// kill -9 of the supervisor: its proxier goes too, and the next STATUS launches both again.
	if err := syscall.Kill(sup, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "proxier to stop with its supervisor", func() bool {
		_, err := client.Status(ctx)
		return err != nil
	})
	statusErr := func() error {
		return e.inHost(func() error { return e.cni.GetStatusNetworkList(ctx, e.harness.list("1.1.0", extra)) })
	}
	_ = statusErr() // not ready yet: error 50, and a launch
	poll(t, 10*time.Second, "relaunch by STATUS", func() bool { return statusErr() == nil })
	e.note()
	if got := len(e.proxierPIDs()); got != 3 {
		t.Errorf("proxier starts = %d, want 3", got)
	}
	if e.supervisorPID() == sup {
		t.Errorf("supervisor pid file still names the killed supervisor %d", sup)
	}

	for _, p := range pods {
		if err := e.del(l, p.rt()); err != nil {
			t.Errorf("DEL %s: %v", p.id, err)
		}
	}
	if regs, err := client.List(ctx); err != nil || len(regs) != 0 {
		t.Errorf("after DEL the proxier holds %d registrations (%v)", len(regs), err)
	}
}
