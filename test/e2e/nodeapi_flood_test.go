package e2e

// Issue 14's node API flood: a root caller (as the plugin is) floods the proxier's socket
// with registrations over the cap, IPs outside the podCIDR, oversized bodies and half
// requests held open, all at once. The proxier must stay responsive (a pod created through
// the real CNI chain meanwhile works through its Service, itself included), keep its memory
// bounded, and count every refusal; once the flood's registrations are gone, a new pod
// registers again.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kubevs/kubevs/proxier/nodeapi"
	"github.com/kubevs/kubevs/test/podsim"
)

// floodIP is inside the bed's podCIDR, far above the addresses pods get.
const floodIP = "10.244.0.250"

// rawPost sends one POST with body to the node API over a connection of its own and returns
// the status code (0 when the request failed).
func rawPost(ctx context.Context, path string, body io.Reader) (int, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", nodeapi.DefaultSocket)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://kubevs"+path, body)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// codes counts answers by status code (0: no answer) and the requests without an answer
// by why (a client timeout in a starved guest is not a wrong answer: the log says which).
type codes struct {
	mu   sync.Mutex
	n    map[int]int
	errs map[string]int
}

func (c *codes) add(code int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n, c.errs = map[int]int{}, map[string]int{}
	}
	c.n[code]++
	if err != nil {
		c.errs[noAnswer(err)]++
	}
}

// noAnswer names why a request got no answer: "timeout", "closed" (the server closed or
// reset the connection) or the error's text.
func noAnswer(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "closed"
	}
	return err.Error()
}

// parallel runs fn(i) for i in [0, n) on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// slowloris is a Python program (another process than the test: the node API caps
// connections per process) that keeps argv[1] connections to the socket argv[2] open with half
// a request, trickling header lines and replacing those the server closes, until its stdin
// closes; then it prints how many it opened in all and how many the server closed within a
// second of the first wave.
const slowloris = `
import os, select, socket, sys, time
n, path = int(sys.argv[1]), sys.argv[2]
opened = 0
def dial():
    global opened
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        s.sendall(b"POST /v1/register HTTP/1.1\r\nHost: kubevs\r\n")
    except OSError:
        s.close()
        return None
    opened += 1
    return s
def closed(s):
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
conns = [c for c in (dial() for _ in range(n)) if c]
print("first wave", len(conns), flush=True)
time.sleep(1)
first = sum(1 for c in conns if closed(c))
while True:
    r, _, _ = select.select([0], [], [], 1.0)
    if r and not os.read(0, 1):
        break
    for i, c in enumerate(conns):
        if c is None or closed(c):
            if c is not None:
                c.close()
            conns[i] = dial()
        else:
            try:
                c.setblocking(True)
                c.sendall(b"X-Slow: 1\r\n")
            except OSError:
                pass
print("opened", opened, "closed at once", first, flush=True)
`

// holdHalfRequests starts the slowloris program with n connections; stop ends it and returns
// what it printed.
func (f *Framework) holdHalfRequests(n int) (stop func() string) {
	f.t.Helper()
	cmd := exec.Command("python3", "-c", slowloris, fmt.Sprint(n), nodeapi.DefaultSocket)
	in, err := cmd.StdinPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("start the slowloris program: %v", err)
	}
	return func() string {
		in.Close()
		if err := cmd.Wait(); err != nil {
			f.t.Errorf("slowloris program: %v: %s", err, out.String())
		}
		return strings.TrimSpace(out.String())
	}
}

func registration(i int, ip string) string {
	b, _ := json.Marshal(map[string]any{"containerID": fmt.Sprintf("flood-%d", i), "ifName": "eth0", "ips": []string{ip}})
	return string(b)
}

func TestNodeAPIFlood(t *testing.T) {
	RequirePlugin(t)
	f := New(t)
	svc := f.CreateService("flood")
	client := nodeapi.NewClient(nodeapi.DefaultSocket)
	client.Timeout = 30 * time.Second
	existing, err := client.List(f.ctx)
	if err != nil {
		t.Fatalf("list registrations: %v", err)
	}
	start := time.Now()
	first := f.CreatePod("flood-0", "flood")
	baseline := time.Since(start)
	f.ExpectHTTP(f.FromPod(first), ServiceURL(svc, "/hostname")).Hostname(first)
	before := f.mustMetrics()

	// The flood, all at once. Half requests first, held through the rest.
	const slow = 200
	release := f.holdHalfRequests(slow)
	overflow := 200
	n := nodeapi.MaxRegistrations - len(existing) + overflow
	var regs, foreign, large codes
	var wg sync.WaitGroup
	floodStart := time.Now()
	var floodTook time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		var inner sync.WaitGroup
		inner.Add(3)
		go func() {
			defer inner.Done()
			parallel(n, 16, func(i int) { regs.add(rawPost(f.ctx, "/v1/register", strings.NewReader(registration(i, floodIP)))) })
		}()
		go func() {
			defer inner.Done()
			bad := []string{"8.8.8.8", f.Bed.NodeIP().String(), "10.96.0.1"}
			parallel(300, 4, func(i int) {
				foreign.add(rawPost(f.ctx, "/v1/register", strings.NewReader(registration(100000+i, bad[i%len(bad)]))))
			})
		}()
		go func() {
			defer inner.Done()
			big := `{"containerID":"` + strings.Repeat("a", 2<<20) + `"}`
			parallel(50, 4, func(int) { large.add(rawPost(f.ctx, "/v1/register", strings.NewReader(big))) })
		}()
		inner.Wait()
		floodTook = time.Since(floodStart)
	}()

	// Meanwhile a pod through the real CNI chain: created, and reaching itself through its
	// Service (hairpin: a local endpoint, known from its EndpointSlice if not registered).
	start = time.Now()
	during := f.CreatePod("flood-1", "flood")
	duringTook := time.Since(start)
	f.ExpectHTTP(f.FromPod(during), ServiceURL(svc, "/hostname")).Hostname(first, during)
	mid := f.mustMetrics()
	wg.Wait()
	slowOut := release()
	after := f.mustMetrics()
	t.Logf("flood: %d registrations %v, 300 foreign IPs %v, 50 bodies of 2 MiB %v in %v; %d half requests held by another process: %s",
		n, regs.n, foreign.n, large.n, floodTook.Round(time.Millisecond), slow, slowOut)
	t.Logf("requests without an answer, by why: registrations %v, foreign IPs %v, bodies %v", regs.errs, foreign.errs, large.errs)
	t.Logf("CNI ADD (pod create) %v before the flood, %v during it", baseline.Round(time.Millisecond), duringTook.Round(time.Millisecond))
	mib := func(m map[string]float64) float64 { return m["process_resident_memory_bytes"] / (1 << 20) }
	t.Logf("proxier RSS %.1f MiB before, %.1f during, %.1f after; goroutines %v, %v, %v", mib(before), mib(mid), mib(after),
		before["go_goroutines"], mid["go_goroutines"], after["go_goroutines"])

	// Bounded: the ADD within a minute, the cap and every check held, memory within 128 MiB
	// of what it was.
	if duringTook > time.Minute {
		t.Errorf("a pod created during the flood took %v (%v before)", duringTook, baseline)
	}
	if got := regs.n[http.StatusNoContent]; got > nodeapi.MaxRegistrations-len(existing) {
		t.Errorf("%d flood registrations accepted, the cap leaves room for %d", got, nodeapi.MaxRegistrations-len(existing))
	}
	if regs.n[http.StatusTooManyRequests] < overflow-1 { // the pod created meanwhile may take a slot
		t.Errorf("registrations answered %v, want at least %d 429s", regs.n, overflow-1)
	}
	if foreign.n[http.StatusBadRequest] != 300 || large.n[http.StatusBadRequest] != 50 {
		t.Errorf("foreign IPs answered %v, oversized bodies %v; want 400 for each", foreign.n, large.n)
	}
	if grew := mib(after) - mib(before); grew > 128 {
		t.Errorf("the proxier's RSS grew by %.1f MiB", grew)
	}
	refused := func(reason string) float64 {
		k := fmt.Sprintf("kubevs_node_api_refused_total{reason=%q}", reason)
		return after[k] - before[k]
	}
	for reason, want := range map[string]int{
		nodeapi.RefusedTooMany:      regs.n[http.StatusTooManyRequests],
		nodeapi.RefusedIPNotAllowed: 300,
		nodeapi.RefusedBodyTooLarge: 50,
		nodeapi.RefusedTooManyConns: slow - nodeapi.MaxConnsPerCaller,
	} {
		if got := refused(reason); got < float64(want) {
			t.Errorf("kubevs_node_api_refused_total{reason=%q} rose by %v, want at least %d", reason, got, want)
		}
	}

	// The flood's registrations go (one GC keeping all others); a new pod registers again.
	regsNow, err := client.List(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keep []nodeapi.Attachment
	for _, r := range regsNow {
		if !strings.HasPrefix(r.ContainerID, "flood-") {
			keep = append(keep, r.Key())
		}
	}
	if _, err := client.GC(f.ctx, keep); err != nil {
		t.Fatalf("GC the flood's registrations: %v", err)
	}
	last := f.CreatePod("flood-2", "flood")
	f.expectRegistered(client, last)
	f.ExpectHTTP(f.FromPod(last), ServiceURL(svc, "/hostname")).Hostname(first, during, last)
}

// expectRegistered waits until the proxier holds p's registration.
func (f *Framework) expectRegistered(c *nodeapi.Client, p *podsim.Pod) {
	f.t.Helper()
	f.Eventually("pod "+p.Key()+" is registered", func(ctx context.Context) error {
		regs, err := c.List(ctx)
		if err != nil {
			return err
		}
		for _, r := range regs {
			if r.PodName == p.Name && r.PodNamespace == p.Namespace {
				return nil
			}
		}
		return fmt.Errorf("not among %d registrations", len(regs))
	})
}
