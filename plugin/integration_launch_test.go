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

func TestIntegrationLaunch(t *testing.T) {
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
