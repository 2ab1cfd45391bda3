//go:build linux

package netfilter

import (
	"os/exec"
	"testing"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipset"
)

// BenchmarkLinuxVerify measures what a periodic resync spends on the fixed rules of one
// family when nothing changed them: Verify (one iptables-save per table, a process each)
// and Repair (the same reads; what Resync ran under the kernel lock before it read apart).
// In a fresh netns on the host, each backend.
func BenchmarkLinuxVerify(b *testing.B) {
	for _, bk := range []Backend{BackendNFT, BackendLegacy} {
		for _, op := range []string{"verify", "repair"} {
			b.Run(string(bk)+"/"+op, func(b *testing.B) {
				testenv.EnterNetns(b)
				l, err := NewBackend(bk)
				if err != nil {
					b.Fatal(err)
				}
				out, err := runTool("ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port", "family", "inet")
				if err != nil {
					b.Fatalf("ipset create: %v: %s", err, out)
				}
				rs := ruleset("0x4000")
				if err := l.Ensure(ipset.IPv4, rs); err != nil {
					b.Fatal(err)
				}
				restores := l.restores
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var differ []string
					if op == "verify" {
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
				b.ReportMetric(float64(len(Tables())), "iptables-save/op")
			})
		}
	}
}

// runTool runs a command and returns its combined output.
func runTool(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
