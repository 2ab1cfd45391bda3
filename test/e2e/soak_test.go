package e2e

// TestSoak (make soak, make soak-short; issue 13): for KUBEVS_E2E_SOAK_DURATION, constant
// traffic (new connections and established flows: pod -> ClusterIP over TCP and UDP,
// outside host -> NodePort, a pod -> itself through its Service) while bursts of Service,
// EndpointSlice and pod churn alternate with faults injected at random moments from a seeded
// RNG (the seed is printed; KUBEVS_E2E_SOAK_SEED replays the schedule). After each fault the
// soak waits until kubevs's kernel state for the fixed Services is exactly what it was
// before, `kubevs status` exits 0 and every traffic path answers again, and fails when that
// takes longer than the fault's bound. Every fault (soak_faults_test.go) runs once, in a
// random order, then more at random while the duration lasts; KUBEVS_E2E_SOAK_FAULTS picks
// some by name. At the end: no virtual server, VIP or set member left of any churned
// Service, registrations matching the pods, no new connection failed outside fault windows
// and no established flow broke.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/test/bed"
	"github.com/kubevs/kubevs/test/podsim"
)

// soak is one soak run's state.
type soak struct {
	t     *testing.T
	f     *Framework
	rng   *rand.Rand
	churn *churner
	own   owned
	// config is the soak proxier's config file; starts counts its starts. binary is the
	// soak's own copy of kubevs-proxier, which the "binary replaced" fault replaces; cur is
	// the running one.
	config, binary string
	starts         int
	cur            *bed.Process
	// cold is the number of Services of the cold sync fault; coldIPs their ClusterIPs.
	cold    int
	coldIPs map[string]bool
	// adoption is what the rollout fault saw before it: kube-ipvs0's index and the fixed
	// virtual servers' connection counters.
	adoption adoptionMark
	// syncPeriod is the proxier's; slack is added to each bound (the guest is emulated);
	// apiDown is the longest kube-apiserver outage.
	syncPeriod, slack, apiDown time.Duration
	probes                     []*probe
	keepers                    []*keeper
	results                    []faultResult
	stalls                     stallWatch
	// ends is what the fault being injected destroys in the kernel for the flows through it
	// (see faultResult.ends); inject sets it, the round moves it into its result.
	ends []string
}

// faultResult is one row of the soak's table.
type faultResult struct {
	n              int
	at             time.Duration // since the soak began
	name, detail   string
	kernel, status time.Duration // until the kernel snapshot matched, until kubevs status exited 0
	traffic        time.Duration // until every probe answered
	bound          time.Duration
	from, to       time.Time // the fault window
	newFailed      int
	newTotal       int
	estBroken      int
	// ends names the virtual servers ("tcp IP:PORT") whose kernel connection state the fault
	// itself destroyed: an established flow through one of them ends at its next packet
	// whatever the proxier does (the kernel expires a connection whose virtual server is
	// gone, expire_nodest_conn=1). Such a break is reported (estEnded), not judged.
	ends       []string
	estEnded   int
	repaired   map[string]float64
	statusRuns []time.Duration // how long each kubevs status run took
	// err: not repaired at all (the soak stops); late: repaired, over the bound (the soak
	// goes on and fails at its end).
	err, late error
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, v)
	}
	return n
}

func TestSoak(t *testing.T) {
	RequirePlugin(t)
	duration := envDuration(t, "KUBEVS_E2E_SOAK_DURATION", 2*time.Minute)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("KUBEVS_E2E_SOAK_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("KUBEVS_E2E_SOAK_SEED=%q: %v", v, err)
		}
	}
	faults, err := selectFaults(os.Getenv("KUBEVS_E2E_SOAK_FAULTS"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("soak for %s, seed %d (KUBEVS_E2E_SOAK_SEED=%d replays this schedule), %d faults", duration, seed, seed, len(faults))
	f := New(t)
	s := &soak{
		t: t, f: f, rng: rand.New(rand.NewPCG(seed, seed^0x50a4)),
		syncPeriod: envDuration(t, "KUBEVS_E2E_SOAK_SYNC_PERIOD", 15*time.Second),
		slack:      envDuration(t, "KUBEVS_E2E_SOAK_SLACK", 20*time.Second),
		apiDown:    envDuration(t, "KUBEVS_E2E_SOAK_APISERVER_DOWN", 60*time.Second),
		cold:       envInt(t, "KUBEVS_E2E_SOAK_COLD", 5000),
	}
	s.setup()
	t.Cleanup(func() { // registered last, so it runs first: before the pods go
		if t.Failed() {
			s.dumpProxierStacks()
		}
	})
	ctx, stop := context.WithCancel(f.Context())
	var wg sync.WaitGroup
	for _, p := range s.probes {
		wg.Go(func() { p.run(ctx) })
	}
	for _, k := range s.keepers {
		wg.Go(func() { k.run(ctx) })
	}
	wg.Go(func() { s.stalls.run(ctx) })
	defer func() { stop(); wg.Wait() }()

	// Every fault once, in a random order; then more rounds while the duration lasts.
	begin := time.Now()
	var order []fault
	for n, round := 1, 0; ; {
		if len(order) == 0 {
			if round > 0 && time.Since(begin) >= duration {
				break
			}
			order = shuffled(s.rng, faults)
			round++
		}
		fl := order[0]
		order = order[1:]
		if round > 1 {
			left := duration - time.Since(begin)
			if left <= 0 {
				break
			}
			if fl.once || fl.repair == byReconnect && left < 4*s.apiDown {
				continue // an outage (and the API server's slow start) would outlast the soak
			}
		}
		s.inject(ctx, n, begin, fl)
		n++
	}
	s.finish(ctx, begin)
	stop()
	wg.Wait()
	s.report(time.Since(begin))
	s.verifyTraffic()
}

func shuffled(rng *rand.Rand, in []fault) []fault {
	out := append([]fault(nil), in...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// setup replaces the bed's proxier by the soak's (its syncPeriod), creates the fixed
// Services and their pods, and the probes and flows.
func (s *soak) setup() {
	f := s.f
	s.config = f.Bed.LogDir + "/kubevs-proxier-soak.yaml"
	text := proxierConfig(map[string]string{"syncPeriod": s.syncPeriod.String()}, f.Bed.PodCIDRs())
	if err := os.WriteFile(s.config, []byte(text), 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.binary = filepath.Join(s.t.TempDir(), "kubevs-proxier")
	if err := copyExecutable(proxier.Binary, s.binary); err != nil {
		s.t.Fatal(err)
	}
	f.killProxier()
	p, err := s.startProxier(f.Context())
	if err != nil {
		s.t.Fatal(err)
	}
	f.Eventually("the soak's kubevs-proxier is ready", func(ctx context.Context) error {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("exited: %w; log:\n%s", err, p.Tail(2000))
		}
		return httpOK(ctx, proxierReadyz)
	})

	web := f.CreateService("web", func(svc *corev1.Service) { svc.Spec.Type = corev1.ServiceTypeNodePort })
	webPods := f.CreatePods("web", 2)
	hair := f.CreateService("hair")
	hairPod := f.CreatePod("hair-0", "hair")
	f.CreateService("churnpod")
	client := f.CreatePod("client", "client")
	s.churn = newChurner(f, s.rng, webPods)

	s.own = owned{tokens: map[string]bool{}}
	for _, svc := range []*corev1.Service{web, hair} {
		for _, ip := range svc.Spec.ClusterIPs {
			s.own.tokens[ip] = true
		}
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				s.own.tokens[strconv.Itoa(int(p.NodePort))] = true
			}
		}
	}
	for _, p := range append(webPods, hairPod) {
		for _, ip := range p.IPs() {
			s.own.tokens[ip.String()] = true
		}
	}
	names := func(pods ...*podsim.Pod) []string {
		out := make([]string, len(pods))
		for i, p := range pods {
			out[i] = p.Name
		}
		return out
	}
	w := names(webPods...)
	f.ExpectHTTP(f.FromPod(client), ServiceURL(web, "/hostname")).Hostname(webPods...)
	f.ExpectHTTP(f.FromPod(hairPod), ServiceURL(hair, "/hostname")).Hostname(hairPod)
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(web, "/hostname")).Hostname(webPods...)
	s.probes = []*probe{
		httpProbe("pod -> ClusterIP (TCP)", f.FromPod(client), ServiceURL(web, "/hostname"), w...),
		echoProbe("pod -> ClusterIP (UDP)", f.FromPod(client), "udp", echoAddr(web, "udp-echo"), w...),
		httpProbe("outside -> NodePort (TCP)", f.FromOutside(), f.NodePortURL(web, "/hostname"), w...),
		echoProbe("outside -> NodePort (UDP)", f.FromOutside(), "udp", f.nodePortAddr(web, "udp-echo"), w...),
		httpProbe("pod -> itself via its Service", f.FromPod(hairPod), ServiceURL(hair, "/hostname"), hairPod.Name),
	}
	flowTo := func(name string, src Source, network, addr string) *keeper {
		return &keeper{name: name, via: network + " " + addr, open: func(ctx context.Context) (*flow, error) { return openFlow(ctx, src, network, addr) }}
	}
	s.keepers = []*keeper{
		flowTo("pod -> ClusterIP TCP flow", f.FromPod(client), "tcp", echoAddr(web, "tcp-echo")),
		flowTo("pod -> ClusterIP UDP flow", f.FromPod(client), "udp", echoAddr(web, "udp-echo")),
		flowTo("outside -> NodePort TCP flow", f.FromOutside(), "tcp", f.nodePortAddr(web, "tcp-echo")),
		flowTo("pod -> itself TCP flow", f.FromPod(hairPod), "tcp", echoAddr(hair, "tcp-echo")),
	}
	s.expectInSync(f.Context(), "after setup")
}

// expectInSync waits (one bound) until kubevs status exits 0.
func (s *soak) expectInSync(ctx context.Context, when string) time.Duration {
	start := time.Now()
	bound := 2 * (s.syncPeriod + s.slack) // a few kubevs status runs in the emulated guest
	var out string
	for time.Since(start) < bound {
		var code int
		if code, out = s.runStatus(ctx); code == 0 {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	path, ipvs := s.f.dumpNodeState()
	s.t.Fatalf("kubevs status not in sync %s within %s:\n%s\nnode state in %s; IPVS:\n%s", when, bound, out, path, ipvs)
	return 0
}

// inject runs one round: churn, a quiet moment, the fault, and the wait for its repair.
func (s *soak) inject(ctx context.Context, n int, begin time.Time, fl fault) {
	if fl.repair != byRestart { // the kill makes its own burst, to land mid-sync
		if err := s.churn.burst(ctx, 3+s.rng.IntN(15)); err != nil {
			s.t.Fatal(err)
		}
		s.expectInSync(ctx, fmt.Sprintf("after the churn before fault %d", n))
	}
	before, err := kernelSnapshot(ctx, s.own)
	if err != nil {
		s.t.Fatal(err)
	}
	counters, err := repairCounters(ctx)
	if err != nil {
		s.t.Logf("before fault %d: %v (its repairs go uncounted)", n, err)
	}
	if fl.prepare != nil {
		if err := fl.prepare(s, ctx); err != nil {
			s.t.Fatalf("fault %d (%s): prepare: %v", n, fl.name, err)
		}
	}
	time.Sleep(time.Duration(s.rng.IntN(3000)) * time.Millisecond) // the random moment
	r := faultResult{n: n, name: fl.name, from: time.Now(), at: time.Since(begin)}
	s.ends = nil
	r.detail, err = fl.inject(s, ctx)
	r.ends = s.ends
	if err != nil {
		s.t.Fatalf("fault %d (%s): %v", n, fl.name, err)
	}
	t0 := time.Now()
	switch fl.repair {
	case byEvent, byNothing:
		r.bound = s.slack
	default:
		r.bound = s.syncPeriod + s.slack
	}
	if fl.bound != nil {
		r.bound = fl.bound(s)
	}
	s.waitRepaired(ctx, &r, t0, before)
	r.to = time.Now().Add(probeTimeout)
	after, aerr := repairCounters(ctx)
	if aerr == nil && counters != nil {
		r.repaired = counterDelta(counters, after)
	}
	if fl.counted && counters != nil && aerr == nil && len(r.repaired) == 0 && r.err == nil {
		r.late = errors.Join(r.late, fmt.Errorf("kubevs_drift_repaired_total did not grow"))
	}
	if fl.after != nil && r.err == nil {
		more, err := fl.after(s, ctx, &r)
		if more != "" {
			r.detail += "; " + more
		}
		if err != nil && fl.cleans {
			r.err = fmt.Errorf("its cleanup failed (the soak stops: the next faults would be judged with its objects left): %w", err)
		} else {
			r.late = errors.Join(r.late, err)
		}
	}
	s.results = append(s.results, r)
	s.t.Logf("fault %d at %s: %s (%s): kernel %s, status %s, traffic %s (bound %s), repairs counted %v, status runs %v",
		n, r.at.Round(time.Second), fl.name, r.detail, r.kernel.Round(10*time.Millisecond),
		r.status.Round(10*time.Millisecond), r.traffic.Round(10*time.Millisecond), r.bound, r.repaired, roundAll(r.statusRuns))
	if r.late != nil {
		s.t.Errorf("fault %d (%s): %v", n, fl.name, r.late)
	}
	if r.err != nil {
		s.report(time.Since(begin)) // the rows so far, this one's repair times with them
		path, ipvs := s.f.dumpNodeState()
		s.t.Fatalf("fault %d (%s, seed schedule above): %v\nnode state in %s; IPVS:\n%s", n, fl.name, r.err, path, ipvs)
	}
}

// waitRepaired polls until the fixed Services' kernel state is back to before, kubevs status
// exits 0 and every probe has answered since t0; r.err is set if that takes longer than
// r.bound (the soak keeps measuring a while longer, to report how late it was).
func (s *soak) waitRepaired(ctx context.Context, r *faultResult, t0 time.Time, before string) {
	giveUp := t0.Add(2*r.bound + 30*time.Second)
	var kernelAt, statusAt, trafficAt time.Time
	var lastDiff, lastStatus string
	for {
		now := time.Now()
		if kernelAt.IsZero() {
			snap, err := kernelSnapshot(ctx, s.own)
			switch {
			case err != nil:
				lastDiff = err.Error()
			case snap == before:
				kernelAt = now
			default:
				lastDiff = snapshotDiff(before, snap)
			}
		}
		if !kernelAt.IsZero() && statusAt.IsZero() {
			// The run's start is when the state it found in sync was there: a run takes
			// seconds in the emulated guest, mostly listing from the API server.
			start := time.Now()
			code, out := s.runStatus(ctx)
			r.statusRuns = append(r.statusRuns, time.Since(start))
			if code == 0 {
				statusAt = start
			} else {
				lastStatus = fmt.Sprintf("exit %d:\n%s", code, out)
				s.t.Logf("fault %d: kubevs status %s after the fault, %s", r.n, start.Sub(t0).Round(10*time.Millisecond), lastStatus)
			}
		}
		if trafficAt.IsZero() && s.allAnswered(t0) {
			trafficAt = now
		}
		if !kernelAt.IsZero() && !statusAt.IsZero() && !trafficAt.IsZero() {
			break
		}
		if now.After(giveUp) {
			r.err = fmt.Errorf("not repaired %s after the fault: kernel diff %q; kubevs status:\n%s\nprobes: %s",
				now.Sub(t0).Round(time.Second), lastDiff, lastStatus, s.probeErrors(t0))
			return
		}
		time.Sleep(time.Second) // each poll forks a dozen tools in the emulated guest
	}
	r.kernel, r.status, r.traffic = kernelAt.Sub(t0), statusAt.Sub(t0), trafficAt.Sub(t0)
	if worst := max(r.kernel, r.status, r.traffic); worst > r.bound {
		r.late = fmt.Errorf("repaired after %s, over the bound %s (kubevs status runs %v; last drift %s)",
			worst.Round(10*time.Millisecond), r.bound, roundAll(r.statusRuns), lastStatus)
	}
}

func (s *soak) allAnswered(t0 time.Time) bool {
	for _, p := range s.probes {
		if !p.okSince(t0) {
			return false
		}
	}
	return true
}

// probeErrors names each probe's last failure since t0.
func (s *soak) probeErrors(t0 time.Time) string {
	var b strings.Builder
	for _, p := range s.probes {
		failed, total := p.failures(t0, time.Now())
		fmt.Fprintf(&b, "\n  %s: %d of %d failed", p.name, len(failed), total)
		if len(failed) > 0 {
			fmt.Fprintf(&b, ", last: %v", failed[len(failed)-1].err)
		}
	}
	return b.String()
}

// finish removes the churn and checks what it must have left: nothing of the churned
// Services in the kernel, registrations of exactly the running pods.
func (s *soak) finish(ctx context.Context, begin time.Time) {
	if err := s.churn.clear(ctx); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("churn: %d changes; cleared, in sync after %s", s.churn.ops, s.expectInSync(ctx, "after the churn was cleared").Round(10*time.Millisecond))
	leaks, err := churnLeaks(ctx, s.churn.everIPs)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(leaks) > 0 {
		s.t.Errorf("kernel state left of deleted Services:\n%s", strings.Join(leaks, "\n"))
	}
	if err := s.checkRegistrations(ctx); err != nil {
		s.t.Error(err)
	}
}
