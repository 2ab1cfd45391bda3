package bench

import (
	"context"
	"os/exec"
	"testing"

	"github.com/kubevs/kubevs/internal/testenv"
)

// Sweep in a fresh network namespace on the host: a KUBE-* chain (with a rule jumping to it)
// and a KUBE-* set are counted and removed; a second sweep finds nothing.
func TestSweep(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.EnterNetns(t)
	for _, cmd := range [][]string{
		{"iptables", "-w", "-t", "filter", "-N", "KUBE-BENCH-TEST"},
		{"iptables", "-w", "-t", "filter", "-A", "INPUT", "-j", "KUBE-BENCH-TEST"},
		{"iptables", "-w", "-t", "nat", "-N", "KUBE-BENCH-TEST"},
		{"ipset", "create", "KUBE-BENCH-TEST", "hash:ip"},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", cmd, err, out)
		}
	}
	left, err := Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if left.Chains != 2 || left.Sets != 1 || left.Link {
		t.Errorf("Sweep found %s, want 2 chains, 1 set, no link", left)
	}
	if left, err := Sweep(context.Background()); err != nil || !left.Zero() {
		t.Errorf("second Sweep = %s, %v; want nothing left", left, err)
	}
}
