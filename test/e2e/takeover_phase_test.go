package e2e

// The takeover scenarios' traffic and judge, shared by the IPVS-mode takeover and its
// iptables- and nftables-mode variants: constant new connections, long-lived flows that must
// keep their pod, an optional sampler of the IPVS table, and a check that reports (and
// judges, or only reports) what broke in one phase.

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/test/bed"
	"github.com/kubevs/kubevs/test/podsim"
)

// takeoverTraffic runs for a whole scenario, until its context ends.
type takeoverTraffic struct {
	t       *testing.T
	ctx     context.Context
	loops   []*shortLoop
	flows   []*flow
	sampler *vsSampler // nil: no virtual server is watched (kube-proxy's iptables and nftables modes)
	// control opens new connections from the client pod straight to a backend's address, a
	// path no proxier touches: when it fails too, the guest (or the host under it) was
	// starved, and the phase's failures say nothing about the proxier. stall is the longest
	// a 100 ms sleep of the test process overran in the phase.
	control *shortLoop
	stall   stallGauge
}

// stallGauge records how late the test process wakes from a 100 ms sleep: on a starved
// host the harness itself stops, and every probe times out at once.
type stallGauge struct {
	mu  sync.Mutex
	max time.Duration
}

func (g *stallGauge) run(ctx context.Context) {
	for ctx.Err() == nil {
		t0 := time.Now()
		time.Sleep(100 * time.Millisecond)
		late := time.Since(t0) - 100*time.Millisecond
		g.mu.Lock()
		g.max = max(g.max, late)
		g.mu.Unlock()
	}
}

// cut returns the longest overrun since the previous cut and starts afresh.
func (g *stallGauge) cut() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.max
	g.max = 0
	return m
}

// startTakeoverTraffic starts, from the client pod and from the outside host, new HTTP
// connections in a loop to the ClusterIP and the NodePort, and long-lived TCP and UDP flows to
// both; watched virtual servers (none: no sampler) are sampled every 250 ms; and the flight
// recorder (takeover_trace_test.go) writes to the log dir.
func startTakeoverTraffic(ctx context.Context, t *testing.T, f *Framework, svc *corev1.Service, client *podsim.Pod, backends []*podsim.Pod, watched []string) *takeoverTraffic {
	t.Helper()
	tr := &takeoverTraffic{t: t, ctx: ctx}
	tr.loops = []*shortLoop{{name: "new connections pod -> ClusterIP"}, {name: "new connections outside -> NodePort"}}
	go tr.loops[0].run(ctx, f.FromPod(client), ServiceURL(svc, "/hostname"))
	go tr.loops[1].run(ctx, f.FromOutside(), f.NodePortURL(svc, "/hostname"))
	tr.control = &shortLoop{name: "control: new connections pod -> pod (no proxier on the path)"}
	go tr.control.run(ctx, f.FromPod(client), PodURL(backends[0], "/hostname"))
	go tr.stall.run(ctx)
	for _, fl := range []struct {
		src     Source
		network string
		addr    string
	}{
		{f.FromPod(client), "tcp", servicePortAddr(f, svc, "tcp-echo", false)},
		{f.FromPod(client), "udp", servicePortAddr(f, svc, "udp-echo", false)},
		{f.FromOutside(), "tcp", servicePortAddr(f, svc, "tcp-echo", true)},
		{f.FromOutside(), "udp", servicePortAddr(f, svc, "udp-echo", true)},
	} {
		o, err := openFlow(ctx, fl.src, fl.network, fl.addr)
		if err != nil {
			t.Fatal(err)
		}
		tr.flows = append(tr.flows, o)
		go o.run(ctx)
	}
	if len(watched) > 0 {
		tr.sampler = newVSSampler(watched...)
		go tr.sampler.run(ctx)
	}
	namespaces := map[string]ns.NetNS{"node": nil, "outside": f.Bed.Outside}
	for _, b := range backends {
		namespaces[b.Name] = b.NS
	}
	startTrace(ctx, f.Bed.LogDir, f.Bed.OutsideIP(), net.ParseIP(svc.Spec.ClusterIP), namespaces)
	return tr
}

// procHandle is a proxier a takeover scenario started; it is stopped when the test ends.
type procHandle struct{ *bed.Process }

func startProc(t *testing.T, f *Framework, name, bin string, args ...string) *procHandle {
	t.Helper()
	p, err := bed.StartProcess(f.ctx, f.Bed.LogDir, name, bin, args...)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	return &procHandle{p}
}

// ready answers nil once url answers 200; an error with the log's tail once p has exited.
func (p *procHandle) ready(url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%s exited: %v; log:\n%s", p.Name, err, p.Tail(3000))
		}
		return httpOK(ctx, url)
	}
}

// servicePortAddr is the ClusterIP:port (nodePort false) or node:NodePort of svc's port name.
func servicePortAddr(f *Framework, svc *corev1.Service, name string, nodePort bool) string {
	p := portNamed(svc, name)
	if nodePort {
		return net.JoinHostPort(f.Bed.NodeIP().String(), fmt.Sprint(p.NodePort))
	}
	return net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(p.Port))
}

// phaseFigures is what one phase cost: new connections attempted and failed, the blip of
// each loop, and the long-lived flows that broke.
type phaseFigures struct {
	attempted, failed int64
	blips             []string
	brokenFlows       int
	controlFailed     int64         // the control path's failures: non-zero, the phase is inconclusive
	stall             time.Duration // the test process's longest stall
}

// check judges one phase: what broke since the previous check; since is the switch that
// began the phase (zero for the first), against which failures are timed. A flow that broke
// is reported in that phase and opened again, so that each phase is judged on its own.
// judged false reports the phase without failing the test: kubevs answers for the switches
// and its own phase, not for kube-proxy, and the iptables/nftables variants measure a blip.
func (tr *takeoverTraffic) check(phase string, judged bool, since time.Time) phaseFigures {
	t := tr.t
	t.Helper()
	bad := t.Errorf
	if !judged {
		bad = func(format string, args ...any) { t.Logf("NOT JUDGED: "+format, args...) }
	}
	ctl, stall := tr.control.cut(), tr.stall.cut()
	t.Logf("%s: %s: %d attempted, %d failed %v; the test process stalled up to %v", phase, tr.control.name, ctl.attempted, ctl.failed, ctl.errs, stall.Round(time.Millisecond))
	if ctl.failed > 0 {
		// Still a failure when judged: a starved run proves nothing either way.
		judgedBad := bad
		bad = func(format string, args ...any) {
			judgedBad("INCONCLUSIVE (the control path failed %d of %d, the test process stalled up to %v: starved guest): "+format,
				append([]any{ctl.failed, ctl.attempted, stall.Round(time.Millisecond)}, args...)...)
		}
	}
	var fig phaseFigures
	fig.controlFailed, fig.stall = ctl.failed, stall
	for _, l := range tr.loops {
		c := l.cut()
		fig.attempted += c.attempted
		fig.failed += c.failed
		blip := ""
		if !since.IsZero() {
			blip = "; " + c.blip(since)
			fig.blips = append(fig.blips, l.name+": "+c.blip(since))
		}
		t.Logf("%s: %s: %d attempted, %d failed%s %v", phase, l.name, c.attempted, c.failed, blip, c.errs)
		if c.failed > 0 || c.attempted == 0 {
			bad("%s: %s: %d attempted, %d failed", phase, l.name, c.attempted, c.failed)
		}
	}
	for i, fl := range tr.flows {
		err := fl.failure()
		if err == nil {
			t.Logf("%s: %s alive, %d rounds, backend %s, %d datagrams asked again", phase, fl.name, fl.rounds.Load(), fl.backend, fl.lost.Load())
			continue
		}
		fig.brokenFlows++
		bad("%s: long-lived flow broke: %v", phase, err)
		o, err := openFlow(tr.ctx, fl.src, fl.network, fl.addr)
		if err != nil {
			t.Fatalf("%s: open the broken flow again: %v", phase, err)
		}
		tr.flows[i] = o
		go o.run(tr.ctx)
	}
	if tr.sampler != nil {
		t.Logf("%s: %s", phase, tr.sampler)
		if err := tr.sampler.cut(); err != nil {
			bad("%s: %v", phase, err)
		}
	}
	return fig
}
