package e2e

// The node's IPVS connection table, for the session affinity timeout scenario: ClientIP
// affinity is an IPVS persistence template per client and virtual server (an entry without a
// client port), and the affinity ends when the kernel removes it. How long that takes is the
// kernel's rule, pinned by proxier/ipvs's TestPersistenceTemplateLifetime: the timeout after
// the client's last new connection if that connection has left the table by then, otherwise
// at the first 60 s re-arm after it has.

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/kubevs/kubevs/test/podsim"
)

// ipvsEntry is one line of /proc/net/ip_vs_conn.
type ipvsEntry struct {
	Client, Virtual, Dest netip.AddrPort
	State                 string
	Expires               int // seconds
}

func (e ipvsEntry) String() string {
	return fmt.Sprintf("%s -> %s -> %s %s %ds", e.Client, e.Virtual, e.Dest, e.State, e.Expires)
}

// parseIPVSEntries parses the IPv4 TCP entries of /proc/net/ip_vs_conn.
func parseIPVSEntries(text string) ([]ipvsEntry, error) {
	var out []ipvsEntry
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || f[0] != "TCP" || len(f[1]) != 8 {
			continue
		}
		var ap [3]netip.AddrPort
		for i := range ap {
			a, aerr := hex.DecodeString(f[1+2*i])
			p, perr := strconv.ParseUint(f[2+2*i], 16, 16)
			if aerr != nil || len(a) != 4 || perr != nil {
				return nil, fmt.Errorf("parse ip_vs_conn line %q", sc.Text())
			}
			ap[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a)), uint16(p))
		}
		exp, err := strconv.Atoi(f[8])
		if err != nil {
			return nil, fmt.Errorf("parse ip_vs_conn line %q: %w", sc.Text(), err)
		}
		out = append(out, ipvsEntry{Client: ap[0], Virtual: ap[1], Dest: ap[2], State: f[7], Expires: exp})
	}
	return out, sc.Err()
}

// clientEntries lists the node's IPVS entries of client on virtual. It reads the table
// through a child process: IPVS is per network namespace, and the child starts in the node's.
func (f *Framework) clientEntries(client netip.Addr, virtual netip.AddrPort) ([]ipvsEntry, error) {
	out, err := exec.CommandContext(f.Context(), "cat", "/proc/net/ip_vs_conn").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("read /proc/net/ip_vs_conn: %w: %s", err, out)
	}
	all, err := parseIPVSEntries(string(out))
	if err != nil {
		return nil, err
	}
	var mine []ipvsEntry
	for _, e := range all {
		if e.Client.Addr() == client && e.Virtual == virtual {
			mine = append(mine, e)
		}
	}
	return mine, nil
}

// waitTemplateGone polls until client's persistence template on virtual has gone and returns
// how long after since that was. It fails the test if the template outlives since+bound. Each
// change of the client's entries (one coming, going or changing state; the template re-armed)
// is logged with its time after since.
func (f *Framework) waitTemplateGone(client netip.Addr, virtual netip.AddrPort, since time.Time, bound time.Duration) time.Duration {
	f.t.Helper()
	var last string
	lastExpiry := 0
	for {
		elapsed := time.Since(since)
		entries, err := f.clientEntries(client, virtual)
		if err != nil {
			f.t.Fatal(err)
		}
		var shape []string
		template := false
		for _, e := range entries {
			shape = append(shape, e.Client.String()+" "+e.State)
			if e.Client.Port() == 0 {
				template = true
				if e.Expires > lastExpiry {
					last = "" // re-armed: log it
				}
				lastExpiry = e.Expires
			}
		}
		if now := fmt.Sprint(shape); now != last {
			f.t.Logf("ip_vs_conn +%5.1fs: %v", elapsed.Seconds(), entries)
			last = now
		}
		if !template {
			return elapsed
		}
		if elapsed > bound {
			path, ipvs := f.dumpNodeState()
			f.t.Fatalf("the persistence template of %s on %s outlived %v: %v\nnode state in %s; IPVS:\n%s", client, virtual, bound, entries, path, ipvs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// affinitySlack is what the affinity timeout scenarios allow past timeoutSeconds: timer
// rounding (about 2 s for timers of 16 s to 2 min), the 0.5 s poll and the emulated guest.
const affinitySlack = 10 * time.Second

// stickyRequests is how many requests in a row must reach one backend in a timeout scenario.
const stickyRequests = 15

// affinityScenario is one client of a ClientIP Service whose virtual server balances round
// robin over pods.
type affinityScenario struct {
	src     Source
	client  netip.Addr     // the client's address as IPVS sees it
	virtual netip.AddrPort // the TCP virtual server url reaches
	url     string         // answers the backend's hostname
	pods    []*podsim.Pod  // every backend, all ready
	timeout int32          // the Service's timeoutSeconds, above 10 (see below)
}

// expectAffinityTimeout checks that the client sticks to one pod, that the affinity holds
// for timeoutSeconds after the client's last request began and ends then, and that the next
// request lands on another pod.
//
// Requests end with a reset, so each connection leaves IPVS's table 10 s after it closed
// (CLOSE); with timeoutSeconds above that, the kernel's rule ends the affinity at the timeout
// itself, never re-arming the template for a minute.
func (f *Framework) expectAffinityTimeout(s affinityScenario) {
	f.t.Helper()
	// Every backend first: round robin's order then stays as it is for the whole scenario.
	var backends []string
	for _, p := range s.pods {
		backends = append(backends, net.JoinHostPort(p.IP.String(), fmt.Sprint(p.HTTPPort())))
	}
	f.expectRealServers("TCP", s.virtual.String(), backends...)

	var first string
	f.Eventually(fmt.Sprintf("%s answers %s", s.url, s.src.Name), func(ctx context.Context) error {
		var err error
		first, err = getReset(ctx, s.src, s.url)
		return err
	})
	var lastStart time.Time
	for i := range stickyRequests {
		lastStart = time.Now()
		got, err := getReset(f.Context(), s.src, s.url)
		if err != nil {
			f.t.Fatalf("request %d from %s: %v", i, s.src.Name, err)
		}
		if got != first {
			f.t.Fatalf("request %d from %s answered by %s, the first by %s: affinity broken", i, s.src.Name, got, first)
		}
	}

	timeout := time.Duration(s.timeout) * time.Second
	held := f.waitTemplateGone(s.client, s.virtual, lastStart, timeout+affinitySlack)
	if held < timeout {
		f.t.Fatalf("the affinity of %s ended %.1fs after its last request began, before its timeout %v", s.src.Name, held.Seconds(), timeout)
	}
	f.t.Logf("the affinity of %s held %.1fs after its last request began (timeout %v)", s.src.Name, held.Seconds(), timeout)
	// The template gone, round robin picks again: past the pod it last picked, the sticky one.
	got, err := getReset(f.Context(), s.src, s.url)
	if err != nil {
		f.t.Fatalf("request from %s after the timeout: %v", s.src.Name, err)
	}
	if got == first {
		f.t.Fatalf("after the affinity expired the request from %s was answered by %s again", s.src.Name, got)
	}
	if !isPodName(s.pods, got) {
		f.t.Fatalf("answered by %q, none of the Service's pods", got)
	}
}
