package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
)

// simProxier stands in for a proxier: every few milliseconds it programs the fake kernel
// from the fake API (level-triggered), and counts its syncs on a metrics page. It runs
// until the test ends, also while Run flushes the kernel behind it: a virtual server gone
// between its add and its real servers' is not an error.
type simProxier struct {
	client kubernetes.Interface
	kernel *ipvstest.Fake
	syncs  atomic.Int64
	// skip, if set, is a Service whose changes are never programmed (a stuck proxier).
	skip string
}

func (s *simProxier) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.sync(ctx); err != nil && ctx.Err() == nil {
			panic(err)
		}
		s.syncs.Add(1)
		time.Sleep(3 * time.Millisecond)
	}
}

func (s *simProxier) sync(ctx context.Context) error {
	svcs, err := s.client.CoreV1().Services(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, svc := range svcs.Items {
		k := ipvs.Key{Address: netip.MustParseAddr(svc.Spec.ClusterIP), Protocol: ipvs.TCP, Port: servicePort}
		if err := s.kernel.AddVirtualServer(ipvs.VirtualServer{Key: k, Scheduler: "rr"}); err != nil && !errors.Is(err, ipvs.ErrExist) {
			return err
		}
		sl, err := s.client.DiscoveryV1().EndpointSlices(Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
		if err != nil {
			continue // not written yet
		}
		for i, e := range sl.Endpoints {
			if svc.Name == s.skip && i >= 2 {
				break
			}
			rs := ipvs.RealServer{Address: netip.MustParseAddr(e.Addresses[0]), Port: endpointPort, Weight: 1}
			if err := s.kernel.AddRealServer(k, rs); err != nil && !errors.Is(err, ipvs.ErrExist) && !errors.Is(err, ipvs.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

func (s *simProxier) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprintf(w, "kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} %d\n", s.syncs.Load())
	fmt.Fprintf(w, "kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv4\"} %g\n", 0.001*float64(s.syncs.Load()))
}

func simRun(t *testing.T, skip string) *Report {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := fakeAPI(0)
	kernel := ipvstest.NewFake()
	sim := &simProxier{client: client, kernel: kernel, skip: skip}
	srv := httptest.NewServer(http.HandlerFunc(sim.serveMetrics))
	defer srv.Close()
	progress := 0
	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	go sim.run(simCtx)
	cfg := Config{
		Services: 20, Endpoints: 2, Changes: 5, Burst: 30, Idle: 50 * time.Millisecond,
		ChangeTimeout: 300 * time.Millisecond, ChangeBudget: time.Minute, ColdTimeout: time.Minute, BurstTimeout: time.Second,
		Writers: 4, Seed: 1, Floor: true, LogDir: t.TempDir(), Progress: func(*Report) { progress++ },
		Proxiers:    []Proxier{{Name: "sim", Binary: sleep, Args: []string{"600"}, CleanupArgs: []string{"0"}, MetricsURL: srv.URL}},
		TrashSettle: time.Hour,
	}
	var settled time.Duration
	cfg.sleep = func(_ context.Context, d time.Duration) { settled += d }
	rep := &Report{}
	if err := Run(ctx, cfg, client, kernel, rep); err != nil {
		t.Fatal(err)
	}
	if settled != time.Hour { // one proxier, then the floor
		t.Errorf("waited %s for the kernel's trash, want 1h before the floor", settled)
	}
	if progress < 3 {
		t.Errorf("progress reported %d times, want after each phase", progress)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1", len(rep.Results))
	}
	return rep
}

func TestRunOnFakes(t *testing.T) {
	rep := simRun(t, "")
	r := rep.Results[0]
	if r.Error != "" {
		t.Fatalf("error: %s", r.Error)
	}
	if r.ColdMS <= 0 || r.Change.Count != 5 || r.Change.Timeouts != 0 || r.Change.P50MS <= 0 {
		t.Errorf("cold %v ms, change %+v; want a cold time and 5 changes seen", r.ColdMS, r.Change)
	}
	if r.BurstMS < r.BurstWriteMS || r.BurstMissing != 0 || r.BurstSyncs < 1 {
		t.Errorf("burst %v ms (writes %v ms), %d missing, %v syncs; want converged after the writes, syncs counted",
			r.BurstMS, r.BurstWriteMS, r.BurstMissing, r.BurstSyncs)
	}
	if r.FullSyncs < 1 || r.FullSyncMeanMS < 0.9 || r.FullSyncMeanMS > 1.1 {
		t.Errorf("%v full syncs of mean %v ms, want some of 1 ms", r.FullSyncs, r.FullSyncMeanMS)
	}
	if r.RSSMiB <= 0 || r.IdleCPUPct < 0 {
		t.Errorf("RSS %v MiB, idle %v %%", r.RSSMiB, r.IdleCPUPct)
	}
	if rep.Floor == nil || rep.Floor.Ops != 20*3 {
		t.Errorf("floor %+v, want 60 ops", rep.Floor)
	}
	if len(rep.Notes) != 2 || !strings.Contains(rep.Notes[0], "sim left") || !strings.Contains(rep.Notes[1], "waited 1h0m0s after sim's") {
		t.Errorf("notes %q, want two: the simulated proxier's virtual servers left and deleted, the wait for the trash", rep.Notes)
	}
}

// A change the proxier never programs is a timeout, not a latency, and the burst reports
// what is missing.
func TestRunCountsTimeouts(t *testing.T) {
	r := simRun(t, ServiceName(3)).Results[0]
	if r.Change.Count != 5 {
		t.Fatalf("change %+v, want 5 changes", r.Change)
	}
	// Seed 1 picks Service 3 for at least one single change or burst change.
	if r.Change.Timeouts == 0 && r.BurstMissing == 0 {
		t.Errorf("change %+v, burst missing %d: want Service 3's changes timed out or missing", r.Change, r.BurstMissing)
	}
	if r.BurstMissing > 0 && r.Error == "" {
		t.Error("burst with missing changes: want an error in the result")
	}
	if r.BurstMissing > 0 && (r.RSSMiB <= 0 || !strings.Contains(r.Note, "burst that had not converged")) {
		t.Errorf("burst not converged: RSS %v MiB, note %q; want idle and memory measured all the same, with a note", r.RSSMiB, r.Note)
	}
}

func TestCountPrefixed(t *testing.T) {
	save := "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n:KUBE-NODE-PORT - [0:0]\n-A INPUT -j KUBE-FIREWALL\nCOMMIT\n"
	if n := countPrefixed(save, ":KUBE-"); n != 2 {
		t.Errorf("chains = %d, want 2", n)
	}
	if n := countPrefixed("KUBE-CLUSTER-IP\nKUBE-LOOP-BACK\nother\n", "KUBE-"); n != 2 {
		t.Errorf("sets = %d, want 2", n)
	}
}

// A proxier with a goroutine page gets its dump saved under its name; one without gets none.
func TestDumpGoroutines(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "goroutine 1 [select]:\nmain.sync()\n")
	}))
	defer srv.Close()
	dir := t.TempDir()
	p := Proxier{Name: "kube-proxy ipvs", GoroutinesURL: srv.URL}
	name, err := p.dumpGoroutines(context.Background(), dir, "change3")
	if err != nil || name != "kube-proxy-ipvs-goroutines-change3.txt" {
		t.Fatalf("dumpGoroutines = %q, %v; want kube-proxy-ipvs-goroutines-change3.txt", name, err)
	}
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil || !strings.Contains(string(got), "main.sync()") {
		t.Errorf("dump file = %q, %v; want the served page", got, err)
	}
	if name, err := (Proxier{Name: "kubevs"}).dumpGoroutines(context.Background(), dir, "cold"); name != "" || err != nil {
		t.Errorf("no URL: dumpGoroutines = %q, %v; want nothing", name, err)
	}
}

func TestChangeTimeout(t *testing.T) {
	for _, tc := range []struct {
		name           string
		count, seconds float64
		want           time.Duration
	}{
		{"no sync reported", 0, 0, time.Minute},
		{"fast syncs keep the bound", 10, 2, time.Minute},
		{"syncs of 90 s: three of them", 2, 180, 270 * time.Second},
	} {
		if got := ChangeTimeout(time.Minute, tc.count, tc.seconds); got != tc.want {
			t.Errorf("%s: ChangeTimeout(1m, %v, %v) = %s, want %s", tc.name, tc.count, tc.seconds, got, tc.want)
		}
	}
}

func TestChangeBound(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		adaptive, timeout, left, want time.Duration
	}{
		{"budget left: the adaptive bound", 40 * time.Minute, time.Minute, time.Hour, 40 * time.Minute},
		{"cut to the budget", 40 * time.Minute, time.Minute, 3 * time.Minute, 3 * time.Minute},
		{"never below the timeout", 40 * time.Minute, time.Minute, 10 * time.Second, time.Minute},
		{"fast proxier", time.Minute, time.Minute, time.Hour, time.Minute},
	} {
		if got := ChangeBound(tc.adaptive, tc.timeout, tc.left); got != tc.want {
			t.Errorf("%s: ChangeBound(%s, %s, %s) = %s, want %s", tc.name, tc.adaptive, tc.timeout, tc.left, got, tc.want)
		}
	}
}

func TestScrapePause(t *testing.T) {
	for took, want := range map[time.Duration]time.Duration{
		time.Millisecond:       coldPoll,
		12 * time.Millisecond:  coldPoll,
		50 * time.Millisecond:  time.Second,
		500 * time.Millisecond: 10 * time.Second,
	} {
		if got := ScrapePause(took); got != want {
			t.Errorf("ScrapePause(%s) = %s, want %s", took, got, want)
		}
	}
}
