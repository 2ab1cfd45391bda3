package e2e

// The data plane's cost: new connections per second and their latency through kubevs's IPVS
// paths against straight to the pod (issue 12). One pod serves; each connection is a TCP
// handshake, one echoed line and a close. Each path is measured in turns with the others
// (rounds), so a slower moment of the emulated machine falls on every path alike, and the
// ratios of one run are what count:
//
//   - from the node: to the pod IP, and to the ClusterIP (IPVS NAT, the node's own traffic);
//   - from another pod: to the pod IP (the bridge), and to the ClusterIP;
//   - from the outside host: to the pod IP (routed by the node), and to the node's NodePort
//     (IPVS NAT and masquerade).
//
// The client closes each connection with a reset (SO_LINGER 0), so no TIME_WAIT socket
// limits the rate of a long run. KUBEVS_E2E_DATAPLANE_DURATION sets each path's total time
// (default 3s, the short slice the suite runs; make bench-dataplane runs 60s), and
// KUBEVS_E2E_DATAPLANE_GOAL a floor on the ClusterIP/direct ratios that the run must meet
// (default 0.5, a path that is broken rather than slow; make bench-dataplane holds them to
// issue 12's goal, 0.9). The NodePort/direct ratio is held to 0.5 always. The table
// goes to the log and, as markdown and JSON, to dataplane.md and dataplane.json in
// KUBEVS_E2E_LOGDIR.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/test/podsim"
)

// dataPath is one way to the echo server.
type dataPath struct {
	Name string `json:"name"`
	src  Source
	addr string
}

// pathResult is what one path measured.
type pathResult struct {
	Name     string  `json:"name"`
	Conns    int     `json:"connections"`
	Errors   int     `json:"errors"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"connections_per_second"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	FirstErr string  `json:"first_error,omitempty"`
}

// dataplaneReport is the JSON of a run.
type dataplaneReport struct {
	Date    string       `json:"date"`
	Workers int          `json:"workers"`
	Seconds float64      `json:"seconds_per_path"`
	Rounds  int          `json:"rounds"`
	Paths   []pathResult `json:"paths"`
	Ratios  []ratio      `json:"ratios"`
}

type ratio struct {
	Through, Direct string
	Rate            float64 `json:"connections_per_second_ratio"`
	P99             float64 `json:"p99_ratio"`
}

func TestDataPlaneConnectionRate(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc, server, client := dataPlaneService(f)
	expectDataPlane(f, svc, server)
	goal := envFloat(t, "KUBEVS_E2E_DATAPLANE_GOAL", 0.5)
	rep := measureDataPlane(t, f, dataPlanePaths(f, svc, server, client), dataPlaneDuration(t))
	md := dataplaneMarkdown(rep)
	t.Logf("data plane:\n%s", md)
	writeDataplane(t, "dataplane", rep, md)
	checkDataPlane(t, "", rep, goal)
}

// dataPlaneService creates the measured NodePort Service, its one serving pod and a client
// pod, and checks that the node and the outside host reach the server through it.
func dataPlaneService(f *Framework) (*corev1.Service, *podsim.Pod, *podsim.Pod) {
	svc := f.CreateService("dp", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	server := f.CreatePod("dp-0", "dp")
	client := f.CreatePod("client", "client")
	return svc, server, client
}

// expectDataPlane checks that the node and the outside host reach server through svc (the
// proxier programmed it).
func expectDataPlane(f *Framework, svc *corev1.Service, server *podsim.Pod) {
	f.ExpectHTTP(f.FromNode(), ServiceURL(svc, "/hostname")).Hostname(server)
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(server)
}

// dataPlaneDuration is each path's total time (KUBEVS_E2E_DATAPLANE_DURATION, default 3s).
func dataPlaneDuration(t *testing.T) time.Duration {
	return envDuration(t, "KUBEVS_E2E_DATAPLANE_DURATION", 3*time.Second)
}

// dataPlanePaths are the measured paths, each direct one followed by the one through the
// proxier it is compared with.
func dataPlanePaths(f *Framework, svc *corev1.Service, server, client *podsim.Pod) []dataPath {
	echo := portNamed(svc, "tcp-echo")
	podAddr := net.JoinHostPort(server.IP.String(), strconv.Itoa(server.Spec().TCPPort))
	clusterAddr := net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(echo.Port)))
	nodePortAddr := net.JoinHostPort(f.Bed.NodeIP().String(), strconv.Itoa(int(echo.NodePort)))
	return []dataPath{
		{Name: "node -> pod IP", src: f.FromNode(), addr: podAddr},
		{Name: "node -> ClusterIP", src: f.FromNode(), addr: clusterAddr},
		{Name: "pod -> pod IP", src: f.FromPod(client), addr: podAddr},
		{Name: "pod -> ClusterIP", src: f.FromPod(client), addr: clusterAddr},
		{Name: "outside -> pod IP", src: f.FromOutside(), addr: podAddr},
		{Name: "outside -> NodePort", src: f.FromOutside(), addr: nodePortAddr},
	}
}

// dataPlaneRounds is how many turns each path runs in, with the others: at least 3, and
// turns of about 5 s in a longer run, so that a slower minute of the machine (a
// neighbour's build, the host's writeback) falls on every path of a phase alike rather than
// on one path's 20 s turn.
func dataPlaneRounds(total time.Duration) int { return max(3, int(total/(5*time.Second))) }

// measureDataPlane warms every path up, then measures them in rounds for total each.
func measureDataPlane(t *testing.T, f *Framework, paths []dataPath, total time.Duration) dataplaneReport {
	t.Helper()
	const workers = 4
	ctx := f.Context()
	for _, p := range paths { // warm up: caches, neighbours, the first IPVS connection
		if lat, errs, first := connect(ctx, p, 1, 20, time.Minute); errs > 0 || len(lat) == 0 {
			t.Fatalf("%s (%s): %d of 20 warm-up connections failed: %v", p.Name, p.addr, errs, first)
		}
	}
	lats := make([][]time.Duration, len(paths))
	results := make([]pathResult, len(paths))
	rounds := dataPlaneRounds(total)
	for r := range rounds {
		for i, p := range paths {
			start := time.Now()
			lat, errs, first := connect(ctx, p, workers, 0, total/time.Duration(rounds))
			res := &results[i]
			res.Name, res.Conns, res.Errors = p.Name, res.Conns+len(lat), res.Errors+errs
			res.Seconds += time.Since(start).Seconds()
			if first != nil && res.FirstErr == "" {
				res.FirstErr = fmt.Sprintf("round %d: %v", r, first)
			}
			lats[i] = append(lats[i], lat...)
		}
	}
	for i := range results {
		res := &results[i]
		res.PerSec = float64(res.Conns) / res.Seconds
		res.P50MS, res.P99MS = quantileMS(lats[i], 0.50), quantileMS(lats[i], 0.99)
	}
	rep := dataplaneReport{Date: time.Now().UTC().Format(time.RFC3339), Workers: workers, Seconds: total.Seconds(), Rounds: rounds, Paths: results}
	for i := 0; i+1 < len(results); i += 2 {
		d, th := results[i], results[i+1]
		rep.Ratios = append(rep.Ratios, ratio{Through: th.Name, Direct: d.Name, Rate: th.PerSec / d.PerSec, P99: th.P99MS / d.P99MS})
	}
	return rep
}

// checkDataPlane fails paths that look broken (few connections, over 10 % failed, under
// half of direct) and ClusterIP paths under goal; who names the proxier in the messages.
func checkDataPlane(t *testing.T, who string, rep dataplaneReport, goal float64) {
	t.Helper()
	for _, res := range rep.Paths {
		// A connect may time out now and then under emulation; a broken path fails nearly
		// all.
		if res.Conns < 20 || res.Errors*10 > res.Conns+res.Errors {
			t.Errorf("%s%s: %d connections, %d failed (first: %s)", who, res.Name, res.Conns, res.Errors, res.FirstErr)
		}
	}
	for _, r := range rep.Ratios {
		floor := 0.5 // the NodePort also masquerades: reported, held to the broken-path floor
		if strings.Contains(r.Through, "ClusterIP") {
			floor = goal
		}
		if r.Rate < floor {
			t.Errorf("%s%s: %.2f of the connections per second of %s, want at least %.2f", who, r.Through, r.Rate, r.Direct, floor)
		}
	}
}

// connect runs workers clients on path p until n connections are done (n > 0) or for d,
// and returns each successful connection's latency, the failures and the first failure.
func connect(ctx context.Context, p dataPath, workers, n int, d time.Duration) ([]time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	// The loop watches the clock, not only ctx: between the deadline and ctx's timer firing,
	// every dial fails at once on the passed deadline, thousands of "i/o timeout"s in a
	// millisecond that are no failures of the path (the first 3 s run in CI counted 227).
	deadline, _ := ctx.Deadline()
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }
	var (
		mu    sync.Mutex
		lat   []time.Duration
		errs  int
		first error
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			for !over() {
				start := time.Now()
				err := echoOnce(ctx, p)
				if err != nil && over() {
					break // cut by the deadline: neither a success nor a failure
				}
				mu.Lock()
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
				} else {
					mine = append(mine, time.Since(start))
				}
				done := n > 0 && len(lat)+len(mine)+errs >= n
				mu.Unlock()
				if done {
					cancel()
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return lat, errs, first
}

// echoOnce opens one connection on p, has one line echoed and closes it with a reset.
func echoOnce(ctx context.Context, p dataPath) error {
	cctx, cancel := context.WithTimeout(ctx, perTry)
	defer cancel()
	conn, err := p.src.Dial(cctx, "tcp", p.addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", p.addr, err)
	}
	defer func() {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
	}()
	deadline, _ := cctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	line, err := bufio.NewReaderSize(conn, 64).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if line != "ping\n" {
		return fmt.Errorf("echo %q, want %q", line, "ping\n")
	}
	return nil
}

func quantileMS(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds()) / 1000
}

func dataplaneMarkdown(r dataplaneReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data plane %s: %d workers, %.0f s per path in %d rounds, one echoed line per connection\n\n", r.Date, r.Workers, r.Seconds, r.Rounds)
	b.WriteString("| path | connections/s | p50 | p99 | connections (failed) |\n| --- | --- | --- | --- | --- |\n")
	for _, p := range r.Paths {
		fmt.Fprintf(&b, "| %s | %.0f | %.2f ms | %.2f ms | %d (%d) |\n", p.Name, p.PerSec, p.P50MS, p.P99MS, p.Conns, p.Errors)
	}
	b.WriteString("\n| through / direct | connections/s | p99 |\n| --- | --- | --- |\n")
	for _, x := range r.Ratios {
		fmt.Fprintf(&b, "| %s / %s | %.2f | %.2f |\n", x.Through, x.Direct, x.Rate, x.P99)
	}
	return b.String()
}

// writeDataplane writes the report as NAME.md and NAME.json into KUBEVS_E2E_LOGDIR.
func writeDataplane(t *testing.T, name string, r any, md string) {
	dir := os.Getenv("KUBEVS_E2E_LOGDIR")
	if dir == "" {
		return
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{name + ".md": []byte(md), name + ".json": js} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Errorf("write %s: %v", name, err)
		}
	}
}

func envFloat(t *testing.T, name string, def float64) float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || x < 0 {
		t.Fatalf("%s=%q: want a number at least 0", name, v)
	}
	return x
}
