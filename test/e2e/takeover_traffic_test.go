package e2e

// Traffic for the takeover scenarios: a constant loop of new short connections, long-lived TCP
// connections and UDP flows that must keep their backend, and a sampler of the node's IPVS
// table that tells whether a virtual server was ever missing or re-created (its connection
// counter, kept by the kernel since the virtual server was added, went down).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// shortLoop opens new connections (HTTP GETs) from src to url until ctx ends.
type shortLoop struct {
	name              string
	attempted, failed atomic.Int64
	mu                sync.Mutex
	errs              []string // the first few failures since the last cut, with their time
	cutAttempted      int64    // the counters at the last cut
	cutFailed         int64
	// firstFail and lastFail bound the failures since the last cut: the start of the first
	// failed attempt and the end of the last one (zero without a failure). Together with the
	// switch's time they are the blip a takeover costs new connections.
	firstFail, lastFail time.Time
}

func (l *shortLoop) run(ctx context.Context, src Source, url string) {
	for ctx.Err() == nil {
		begin := time.Now()
		_, err := Get(ctx, src, url)
		if ctx.Err() != nil {
			return // cut short by the end of the loop, not a failure
		}
		l.attempted.Add(1)
		if err != nil {
			l.failed.Add(1)
			l.mu.Lock()
			if len(l.errs) < 5 {
				l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
			if l.firstFail.IsZero() {
				l.firstFail = begin
			}
			l.lastFail = time.Now()
			l.mu.Unlock()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loopCut is what a shortLoop saw in one phase of a scenario.
type loopCut struct {
	attempted, failed   int64
	errs                []string  // the first failures, with their time
	firstFail, lastFail time.Time // see shortLoop
}

// blip says when new connections failed, relative to since (the switch): "none", or the
// window from the start of the first failed attempt to the end of the last.
func (c loopCut) blip(since time.Time) string {
	if c.failed == 0 {
		return "no failure"
	}
	from, to := c.firstFail.Sub(since), c.lastFail.Sub(since)
	return fmt.Sprintf("failures from %+.1fs to %+.1fs after the switch (%.1fs)", from.Seconds(), to.Seconds(), (to - from).Seconds())
}

// cut returns what happened since the previous cut (one phase of a scenario) and starts
// counting afresh.
func (l *shortLoop) cut() loopCut {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, f := l.attempted.Load(), l.failed.Load()
	c := loopCut{attempted: a - l.cutAttempted, failed: f - l.cutFailed, errs: l.errs, firstFail: l.firstFail, lastFail: l.lastFail}
	l.cutAttempted, l.cutFailed, l.errs = a, f, nil
	l.firstFail, l.lastFail = time.Time{}, time.Time{}
	return c
}

// flow is one long-lived connection (TCP) or socket (UDP, one source port) that asks
// "hostname" every 200 ms and must hear the same backend every time.
type flow struct {
	name    string
	src     Source
	network string
	addr    string
	conn    net.Conn
	backend string
	rounds  atomic.Int64
	lost    atomic.Int64 // UDP datagrams that had no answer in time, asked again
	mu      sync.Mutex
	err     error
}

// openFlow connects from src and asks once, retrying the first exchange until the Service
// answers (the proxier may still be programming it).
func openFlow(ctx context.Context, src Source, network, addr string) (*flow, error) {
	fl := &flow{name: fmt.Sprintf("%s %s %s", src.Name, network, addr), src: src, network: network, addr: addr}
	var last error
	for i := 0; i < 20 && ctx.Err() == nil; i++ {
		conn, err := src.Dial(ctx, network, addr)
		if err == nil {
			fl.conn = conn
			if fl.backend, err = fl.ask(); err == nil {
				return fl, nil
			}
			conn.Close()
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return nil, fmt.Errorf("open %s: %w", fl.name, last)
}

func (fl *flow) ask() (string, error) {
	_ = fl.conn.SetDeadline(time.Now().Add(perTry))
	if fl.network == "udp" {
		return fl.askUDP()
	}
	if _, err := fmt.Fprintln(fl.conn, "hostname"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(fl.conn).ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}

// run asks every 200 ms until ctx ends or an exchange fails or meets another backend.
func (fl *flow) run(ctx context.Context) {
	defer fl.conn.Close()
	for ctx.Err() == nil {
		got, err := fl.ask()
		if err == nil && got != fl.backend {
			err = fmt.Errorf("answered by %s, the flow began with %s", got, fl.backend)
		}
		if err != nil {
			if ctx.Err() == nil {
				fl.mu.Lock()
				fl.err = fmt.Errorf("%s at %s after %d rounds: %w", fl.name, time.Now().Format("15:04:05.000"), fl.rounds.Load(), err)
				fl.mu.Unlock()
			}
			return
		}
		fl.rounds.Add(1)
		time.Sleep(200 * time.Millisecond)
	}
}

// askUDP asks over the flow's socket (one source port, so one IPVS connection), and asks
// once more when no answer came in time: UDP is lossy, and a TCG guest on a loaded host
// loses a datagram now and then (seen once in a gap with no proxier running at all). A flow
// that stays silent twice in a row, or that meets another backend, is broken; each lost
// datagram is counted and reported with the phase.
func (fl *flow) askUDP() (string, error) {
	buf := make([]byte, 512)
	var err error
	for try := 0; try < 2; try++ {
		_ = fl.conn.SetDeadline(time.Now().Add(perTry))
		if _, err = fl.conn.Write([]byte("hostname")); err != nil {
			return "", err
		}
		var n int
		if n, err = fl.conn.Read(buf); err == nil {
			return string(buf[:n]), nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return "", err
		}
		fl.lost.Add(1)
	}
	return "", err
}

func (fl *flow) failure() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.err
}

// vsSampler reads `ipvsadm -Ln --stats` every 250 ms and follows the given virtual servers
// ("TCP  10.96.0.10:80" as ipvsadm prints them): how often each was missing from a sample,
// and how often its connection counter went down (the virtual server was re-created).
type vsSampler struct {
	watch   []string
	mu      sync.Mutex
	samples int
	missing map[string]int
	resets  map[string]int
	last    map[string]int64
	errs    int
}

func newVSSampler(watch ...string) *vsSampler {
	return &vsSampler{watch: watch, missing: map[string]int{}, resets: map[string]int{}, last: map[string]int64{}}
}

func (s *vsSampler) run(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := exec.CommandContext(ctx, "ipvsadm", "-Ln", "--stats", "--exact").Output()
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if err != nil {
			s.errs++
		} else {
			s.record(parseVSConns(string(out)))
		}
		s.mu.Unlock()
		time.Sleep(250 * time.Millisecond)
	}
}

func (s *vsSampler) record(conns map[string]int64) {
	s.samples++
	for _, vs := range s.watch {
		c, ok := conns[vs]
		switch {
		case !ok:
			s.missing[vs]++
		case c < s.last[vs]:
			s.resets[vs]++
		}
		if ok {
			s.last[vs] = c
		}
	}
}

// cut returns an error naming every virtual server that was missing or re-created since the
// previous cut (one phase of a scenario), and starts counting afresh.
func (s *vsSampler) cut() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad []string
	for _, vs := range s.watch {
		if s.missing[vs] > 0 || s.resets[vs] > 0 {
			bad = append(bad, fmt.Sprintf("%s missing in %d, counter reset in %d", vs, s.missing[vs], s.resets[vs]))
		}
	}
	samples := s.samples
	s.samples, s.missing, s.resets = 0, map[string]int{}, map[string]int{}
	if len(bad) > 0 {
		return fmt.Errorf("of %d IPVS samples: %s", samples, strings.Join(bad, "; "))
	}
	if samples == 0 {
		// Seen under kube-proxy alone at load ~35: one ipvsadm outlasted the phase. No
		// sample proves nothing about the virtual servers.
		return errors.New("no IPVS sample in this phase: the virtual servers were not watched")
	}
	return nil
}

func (s *vsSampler) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d IPVS samples in this phase (%d ipvsadm errors in all), last counters %v", s.samples, s.errs, s.last)
}

// parseVSConns reads the virtual servers of `ipvsadm -Ln --stats` and their Conns column,
// keyed "PROT  ADDR:PORT" with the protocol and address as printed.
func parseVSConns(text string) map[string]int64 {
	out := map[string]int64{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "TCP" && f[0] != "UDP" && f[0] != "SCTP") {
			continue
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			continue
		}
		out[vsKey(f[0], f[1])] = n
	}
	return out
}

func vsKey(proto, addrPort string) string { return proto + " " + addrPort }
