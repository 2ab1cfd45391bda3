package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/kubevs/kubevs/test/podsim"
)

// Source is where a client connection starts: the node, a pod, or the outside host.
type Source struct {
	// Name says where, for messages.
	Name string
	// Dial connects from there.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// FromNode connects from the node's own network namespace.
func (f *Framework) FromNode() Source {
	var d net.Dialer
	return Source{Name: "node", Dial: d.DialContext}
}

// FromPod connects from inside pod p.
func (f *Framework) FromPod(p *podsim.Pod) Source {
	return Source{Name: "pod " + p.Key(), Dial: p.DialContext}
}

// FromOutside connects from the outside host (another machine on the node's network).
func (f *Framework) FromOutside() Source {
	out := f.Bed.Outside
	return Source{Name: "outside host", Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := out.Do(func(ns.NetNS) error {
			var d net.Dialer
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}}
}

// perTry bounds one request inside a polled expectation.
const perTry = 5 * time.Second

// Get does one HTTP GET from src and returns the trimmed body of a 200 answer.
func Get(ctx context.Context, src Source, url string) (string, error) {
	c := &http.Client{Timeout: perTry, Transport: &http.Transport{DialContext: src.Dial, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s from %s: %w", url, src.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("GET %s from %s: read body: %w", url, src.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s from %s: %s", url, src.Name, resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// Echo sends one line over network ("tcp" or "udp") to addr from src and returns the answer:
// the server's hostname for "hostname", the client IP it saw for "clientip", else the line.
func Echo(ctx context.Context, src Source, network, addr, line string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, perTry)
	defer cancel()
	conn, err := src.Dial(ctx, network, addr)
	if err != nil {
		return "", fmt.Errorf("dial %s %s from %s: %w", network, addr, src.Name, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if network == "udp" {
		if _, err := conn.Write([]byte(line)); err != nil {
			return "", fmt.Errorf("send to udp %s from %s: %w", addr, src.Name, err)
		}
		buf := make([]byte, 64<<10)
		n, err := conn.Read(buf)
		if err != nil {
			return "", fmt.Errorf("read from udp %s from %s: %w", addr, src.Name, err)
		}
		return string(buf[:n]), nil
	}
	if _, err := fmt.Fprintln(conn, line); err != nil {
		return "", fmt.Errorf("send to tcp %s from %s: %w", addr, src.Name, err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from tcp %s from %s: %w", addr, src.Name, err)
	}
	return strings.TrimSuffix(reply, "\n"), nil
}

// HTTPExpectation is a polled expectation about what a client at Source gets from a URL.
type HTTPExpectation struct {
	f   *Framework
	src Source
	url string
}

// ExpectHTTP starts an expectation about GET url from src. URLs end in /hostname or
// /clientip (see package testserver).
func (f *Framework) ExpectHTTP(src Source, url string) *HTTPExpectation {
	return &HTTPExpectation{f: f, src: src, url: url}
}

// Body waits until the answer is want.
func (e *HTTPExpectation) Body(want string) {
	e.f.t.Helper()
	e.f.Eventually(fmt.Sprintf("GET %s from %s answers %q", e.url, e.src.Name, want), func(ctx context.Context) error {
		got, err := Get(ctx, e.src, e.url)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("got %q", got)
		}
		return nil
	})
}

// Hostname waits until every one of pods has answered (GET .../hostname) and, after the
// first of them answered, no other pod did: the client reaches exactly these backends.
func (e *HTTPExpectation) Hostname(pods ...*podsim.Pod) {
	e.f.t.Helper()
	want := make([]string, len(pods))
	for i, p := range pods {
		want[i] = p.Name
	}
	sort.Strings(want)
	seen := map[string]bool{}
	e.f.Eventually(fmt.Sprintf("GET %s from %s reaches each of %v", e.url, e.src.Name, want), func(ctx context.Context) error {
		// Several requests per round: load balancing spreads them over the backends.
		for range 4 * len(want) {
			got, err := Get(ctx, e.src, e.url)
			if err != nil {
				return err
			}
			if !slices.Contains(want, got) {
				clear(seen) // still converging: start counting again
				return fmt.Errorf("answered by %q, not one of %v", got, want)
			}
			seen[got] = true
			if len(seen) == len(want) {
				return nil
			}
		}
		return fmt.Errorf("only %v answered so far", keys(seen))
	})
}

// Fails waits until the request fails (refused, unreachable or timed out).
func (e *HTTPExpectation) Fails() {
	e.f.t.Helper()
	e.f.Eventually(fmt.Sprintf("GET %s from %s fails", e.url, e.src.Name), func(ctx context.Context) error {
		got, err := Get(ctx, e.src, e.url)
		if err == nil {
			return fmt.Errorf("still answered %q", got)
		}
		return nil
	})
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortEndpoints(eps []Endpoint) {
	sort.Slice(eps, func(i, j int) bool { return eps[i].IP < eps[j].IP })
}
