package e2e

// What the soak reads of the node: a text snapshot of the kernel state kubevs owns for the
// soak's fixed Services (compared before a fault and after, to tell that the repair is
// exact), and the proxier's repair counters.

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// owned names what the soak's fixed Services own in the kernel: their ClusterIPs, their
// NodePorts and their pods' IPs. Virtual servers, set members and VIPs that name none of
// these belong to the churned Services, whose drains may end in the middle of a fault
// window, so the snapshot leaves them out (kubevs status checks them).
type owned struct {
	tokens map[string]bool // IPs and NodePort numbers
}

func (o owned) names(s string) bool {
	s = strings.Trim(s, "[]")
	for _, p := range []string{"tcp:", "udp:", "sctp:"} {
		s = strings.TrimPrefix(s, p)
	}
	return o.tokens[s]
}

// vsNamed reports whether an ipvsadm service token (IP:PORT, [IPv6]:PORT) is owned.
func (o owned) vsNamed(tok string) bool {
	host, port, err := net.SplitHostPort(tok)
	return err == nil && (o.tokens[host] || o.tokens[port])
}

// kernelSnapshot returns, one item a line, kubevs's iptables chains and rules (both
// families, nat and filter, counters left out, in the kernel's order), its sets (type only)
// with their owned members, kube-ipvs0 and its owned addresses, and the owned virtual
// servers and real servers with their flags and weights (sorted).
func kernelSnapshot(ctx context.Context, o owned) (string, error) {
	var out []string
	for _, c := range [][]string{
		{"iptables-save", "-t", "nat"}, {"iptables-save", "-t", "filter"},
		{"ip6tables-save", "-t", "nat"}, {"ip6tables-save", "-t", "filter"},
	} {
		text, err := runCmd(ctx, c...)
		if err != nil {
			return "", err
		}
		for _, l := range strings.Split(text, "\n") {
			switch {
			case !strings.Contains(l, "KUBE-"):
			case strings.HasPrefix(l, ":"):
				out = append(out, c[0]+" "+c[2]+" "+strings.Fields(l)[0])
			case strings.HasPrefix(l, "-A "):
				out = append(out, c[0]+" "+c[2]+" "+l)
			}
		}
	}
	text, err := runCmd(ctx, "ipset", "save")
	if err != nil {
		return "", err
	}
	var sets []string
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || !strings.HasPrefix(f[1], "KUBE-") {
			continue
		}
		switch {
		case f[0] == "create":
			sets = append(sets, "ipset create "+f[1]+" "+f[2])
		case f[0] == "add" && slices.ContainsFunc(strings.Split(f[2], ","), o.names):
			sets = append(sets, "ipset add "+f[1]+" "+f[2])
		}
	}
	slices.Sort(sets)
	out = append(out, sets...)

	addrs := []string{"link kube-ipvs0 absent"}
	if text, err := runCmd(ctx, "ip", "-o", "addr", "show", "dev", "kube-ipvs0"); err == nil {
		addrs = []string{"link kube-ipvs0"}
		for _, l := range strings.Split(text, "\n") {
			f := strings.Fields(l)
			if len(f) > 3 && o.names(strings.Split(f[3], "/")[0]) {
				addrs = append(addrs, "vip "+f[3])
			}
		}
	}
	slices.Sort(addrs[1:])
	out = append(out, addrs...)

	text, err = runCmd(ctx, "ipvsadm", "-Sn")
	if err != nil {
		return "", err
	}
	var ipvs []string
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && o.vsNamed(f[2]) {
			ipvs = append(ipvs, "ipvs "+l)
		}
	}
	slices.Sort(ipvs)
	out = append(out, ipvs...)
	return strings.Join(out, "\n"), nil
}

func runCmd(ctx context.Context, cmd ...string) (string, error) {
	out, err := exec.CommandContext(ctx, cmd[0], cmd[1:]...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(cmd, " "), err, out)
	}
	return string(out), nil
}

// snapshotDiff names the lines one snapshot has and the other lacks (at most a few).
func snapshotDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var d []string
	for _, l := range w {
		if !slices.Contains(g, l) {
			d = append(d, "-"+l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			d = append(d, "+"+l)
		}
	}
	if len(d) > 8 {
		d = append(d[:8], fmt.Sprintf("... %d more", len(d)-8))
	}
	return strings.Join(d, "; ")
}

// repairCounters reads kubevs_drift_repaired_total by object from the proxier's metrics.
func repairCounters(ctx context.Context) (map[string]float64, error) {
	all, err := scrape(ctx, proxierMetrics, 30*time.Second) // the emulated guest is slow
	if err != nil {
		return nil, err
	}
	const prefix, suffix = `kubevs_drift_repaired_total{object="`, `"}`
	out := map[string]float64{}
	for k, v := range all {
		if obj, ok := strings.CutPrefix(k, prefix); ok && strings.HasSuffix(obj, suffix) {
			out[strings.TrimSuffix(obj, suffix)] = v
		}
	}
	return out, nil
}

// counterDelta is after minus before, per object, leaving out objects that did not grow.
func counterDelta(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// churnLeaks lists the virtual servers, kube-ipvs0 addresses and set members that name one
// of ips.
func churnLeaks(ctx context.Context, ips map[string]bool) ([]string, error) {
	var out []string
	for _, c := range [][]string{{"ipvsadm", "-Sn"}, {"ipset", "save"}, {"ip", "-o", "addr", "show", "dev", "kube-ipvs0"}} {
		text, err := runCmd(ctx, c...)
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(text, "\n") {
			for _, tok := range strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == ',' || r == '/' || r == '\t' }) {
				host := tok
				if h, _, err := net.SplitHostPort(tok); err == nil {
					host = h
				}
				if ips[host] {
					out = append(out, strings.Join(c, " ")+": "+strings.TrimSpace(l))
					break
				}
			}
		}
	}
	return out, nil
}
