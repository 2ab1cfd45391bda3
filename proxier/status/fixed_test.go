package status

import (
	"strings"
	"testing"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// A flushed chain, a jump deleted with it (`iptables -t nat -F PREROUTING`) and a flushed
// set are drift: status exits 1 and names each; the IPVS table alone looked fine.
func TestStatusReportsRuleAndSetDrift(t *testing.T) {
	c := newCluster(t)
	if code, out, _ := c.status(t); code != ExitOK {
		t.Fatalf("before the flushes: exit %d\n%s", code, out)
	}
	must(t, c.nf.Flush(ipset.IPv4, "nat", "KUBE-SERVICES"))
	must(t, c.nf.Flush(ipset.IPv4, "nat", "PREROUTING"))
	must(t, c.ipset.Flush("KUBE-CLUSTER-IP"))
	code, out, _ := c.status(t)
	if code != ExitDrift {
		t.Errorf("exit %d, want %d", code, ExitDrift)
	}
	// One line of the DRIFT table per difference, its fields in order.
	for _, want := range [][]string{
		{"rules-differ", "inet nat KUBE-SERVICES", "8 rules", "0 rules"},
		{"missing-jump", "inet nat PREROUTING -> KUBE-SERVICES", "jump", "absent"},
		{"missing-set-member", "default/web", "KUBE-CLUSTER-IP 10.96.0.10,tcp:80 ", "member", "absent"},
		{"missing-set-member", "kube-system/dns", "KUBE-CLUSTER-IP 10.96.0.53,udp:53 ", "member", "absent"},
	} {
		if !hasLine(out, want) {
			t.Errorf("report lacks a line with %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "missing-set-member"); n != 5 {
		t.Errorf("%d missing members reported, want the 5 of KUBE-CLUSTER-IP:\n%s", n, out)
	}
	if strings.Contains(out, "KUBE-IPVS-FILTER") || strings.Contains(out, "OUTPUT -> KUBE-SERVICES") {
		t.Errorf("report names what was not flushed:\n%s", out)
	}
}

// hasLine reports whether a line of out holds fields in this order.
func hasLine(out string, fields []string) bool {
	for _, l := range strings.Split(out, "\n") {
		rest, ok := l, true
		for _, f := range fields {
			i := strings.Index(rest, f)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(f):]
		}
		if ok {
			return true
		}
	}
	return false
}
