//go:build linux

package netfilter

import (
	"os/exec"
	"testing"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipset"
)

// BenchmarkLinuxVerify measures what a periodic resync spends on the fixed rules of one
// family when nothing changed them: Verify and Repair read each table with iptables-save
// (a process each), except that with nf_tables they skip the read while the ruleset's
// generation stays (gen=off: without that skip, as before it). In a fresh netns on the
// host, each backend; iptables-save/op counts the processes run.
func BenchmarkLinuxVerify(b *testing.B) {
	for _, bk := range []Backend{BackendNFT, BackendLegacy} {
		for _, op := range []string{"verify", "repair", "verify/gen=off"} {
			if bk == BackendLegacy && op == "verify/gen=off" {
				continue // legacy has no generation
			}
			b.Run(string(bk)+"/"+op, func(b *testing.B) {
				testenv.EnterNetns(b)
				l, err := NewBackend(bk)
				if err != nil {
					b.Fatal(err)
				}
				if op == "verify/gen=off" {
					l.gen = nil
				}
				out, err := runTool("ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port", "family", "inet")
				if err != nil {
					b.Fatalf("ipset create: %v: %s", err, out)
				}
				rs := ruleset("0x4000")
				if err := l.Ensure(ipset.IPv4, rs); err != nil {
					b.Fatal(err)
				}
				restores, saves := l.restores, l.saves
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var differ []string
					if op != "repair" {
						differ, err = l.Verify(ipset.IPv4, rs)
					} else {
						differ, err = l.Repair(ipset.IPv4, rs)
					}
					if err != nil || len(differ) > 0 {
						b.Fatalf("%s = %v, %v", op, differ, err)
					}
				}
				b.StopTimer()
				if l.restores != restores {
					b.Fatalf("%d iptables-restore runs, want 0", l.restores-restores)
				}
				b.ReportMetric(float64(l.saves-saves)/float64(b.N), "iptables-save/op")
			})
		}
	}
}

// runTool runs a command and returns its combined output.
func runTool(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
