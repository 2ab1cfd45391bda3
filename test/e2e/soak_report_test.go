package e2e

// The soak's table and its end checks on traffic and registrations.

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// report logs one row per fault (markdown, for the README) and the traffic totals.
func (s *soak) report(total time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d faults in %s, %d changes of churn\n", len(s.results), total.Round(time.Second), s.churn.ops)
	b.WriteString("| # | at | fault | detail | kernel exact | status 0 | traffic back | bound | new conns failed | established broken | repairs counted |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	sec := func(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
	for i := range s.results {
		r := &s.results[i]
		for _, p := range s.probes {
			failed, n := p.failures(r.from, r.to)
			r.newFailed += len(failed)
			r.newTotal += n
		}
		for _, k := range s.keepers {
			n := len(k.breaksIn(r.from, r.to))
			if slices.Contains(r.ends, k.via) {
				r.estEnded += n
			} else {
				r.estBroken += n
			}
		}
		name := r.name
		switch {
		case r.err != nil:
			name += " (FAILED)"
		case r.late != nil:
			name += " (LATE)"
		}
		broken := strconv.Itoa(r.estBroken)
		if r.estEnded > 0 {
			broken += fmt.Sprintf(" (+%d through the deleted virtual server)", r.estEnded)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %d/%d | %s | %s |\n", r.n, r.at.Round(time.Second),
			name, r.detail, sec(r.kernel), sec(r.status), sec(r.traffic), r.bound, r.newFailed, r.newTotal, broken, fmtCounters(r.repaired))
	}
	for _, p := range s.probes {
		n, failed := p.counts()
		fmt.Fprintf(&b, "new connections, %s: %d attempted, %d failed\n", p.name, n, failed)
	}
	for _, k := range s.keepers {
		rounds, breaks := k.summary()
		fmt.Fprintf(&b, "established, %s: %d exchanges, %d broken\n", k.name, rounds, breaks)
	}
	n, longest, sum := s.stalls.summary()
	fmt.Fprintf(&b, "soak process stalls over %s: %d, longest %s, %s in all\n", stallMin, n, longest.Round(time.Millisecond), sum.Round(time.Millisecond))
	s.t.Log(b.String())
}

func fmtCounters(m map[string]float64) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range keysOf(m) {
		parts = append(parts, fmt.Sprintf("%s+%g", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// verifyTraffic fails the soak for a new connection that failed outside every fault window
// and for any established flow that broke.
func (s *soak) verifyTraffic() {
	inWindow := func(t time.Time) bool {
		for _, r := range s.results {
			if !t.Before(r.from) && t.Before(r.to) {
				return true
			}
		}
		return false
	}
	syncs := proxierSyncs(s.f.Bed.LogDir)
	for _, p := range s.probes {
		p.mu.Lock()
		var outside []string
		starved := 0
		for _, a := range p.attempts {
			if a.err == nil || inWindow(a.start) {
				continue
			}
			if s.stalls.starved(a) {
				starved++
				s.t.Logf("%s: starved, not counted: %v\n    %s", p.name, a.err, s.explain(a, syncs))
				continue
			}
			outside = append(outside, a.start.Format("15:04:05.000")+" "+a.err.Error())
			s.t.Logf("%s: FAILED outside any fault window: %v\n    %s", p.name, a.err, s.explain(a, syncs))
		}
		p.mu.Unlock()
		if starved > 0 {
			s.t.Logf("%s: %d attempts outside fault windows timed out while the soak process itself was stalled for at least 1/%d of %s (see above)",
				p.name, starved, starvedShare, probeTimeout)
		}
		if len(outside) > 0 {
			s.t.Errorf("%s: %d new connections failed outside any fault window, e.g. %v", p.name, len(outside), outside[:min(len(outside), 3)])
		}
	}
	for _, k := range s.keepers {
		k.mu.Lock()
		for _, b := range k.breaks {
			if r := s.endedBy(k, b.at); r != nil {
				s.t.Logf("established %s ended at %s with its virtual server (fault %d, %s; the kernel drops a deleted virtual server's connections): %v",
					k.name, b.at.Format("15:04:05.000"), r.n, r.name, b.err)
				continue
			}
			s.t.Errorf("established %s broke at %s (%s): %v", k.name, b.at.Format("15:04:05.000"), s.faultAt(b.at), b.err)
		}
		k.mu.Unlock()
	}
}

// endedBy returns the fault whose window holds t and that destroyed the kernel state of k's
// virtual server (faultResult.ends), nil when there is none.
func (s *soak) endedBy(k *keeper, t time.Time) *faultResult {
	for i := range s.results {
		r := &s.results[i]
		if !t.Before(r.from) && t.Before(r.to) && slices.Contains(r.ends, k.via) {
			return r
		}
	}
	return nil
}

// faultAt names the fault whose window holds t.
func (s *soak) faultAt(t time.Time) string {
	for _, r := range s.results {
		if !t.Before(r.from) && t.Before(r.to) {
			return fmt.Sprintf("fault %d, %s", r.n, r.name)
		}
	}
	return "outside any fault window"
}

// checkRegistrations compares the proxier's pod registrations with the running pods of the
// node: the same IPs, none missing, none of a gone pod.
func (s *soak) checkRegistrations(ctx context.Context) error {
	regs, err := nodeapi.NewClient(pluginSocketDir + "/proxier.sock").List(ctx)
	if err != nil {
		return fmt.Errorf("list registrations: %w", err)
	}
	var registered []string
	for _, r := range regs {
		for _, ip := range r.IPs {
			registered = append(registered, ip.String())
		}
	}
	pods, err := s.f.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + s.f.Bed.NodeName()})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	var running []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err == nil {
				running = append(running, a.String())
			}
		}
	}
	slices.Sort(registered)
	slices.Sort(running)
	if !slices.Equal(registered, running) {
		return fmt.Errorf("registrations hold IPs %v, the node's running pods %v", registered, running)
	}
	s.t.Logf("registrations: %d, matching the node's %d running pods", len(regs), len(pods.Items))
	return nil
}
