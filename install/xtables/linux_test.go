package xtables

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/kubevs/kubevs/internal/testenv"
)

// The host's own iptables 1.8 (Debian installs both multi-call binaries in /usr/sbin) in a
// fresh network namespace: the rules one backend writes there are what Detect must find.
const hostSbin = "/usr/sbin"

func requireBackends(t *testing.T) {
	t.Helper()
	for _, m := range []Mode{NFT, Legacy} {
		if _, err := exec.LookPath(hostSbin + "/" + m.Multi()); err != nil {
			testenv.Skip(t, fmt.Sprintf("%s: %v (make deps installs iptables)", m.Multi(), err))
		}
	}
}

func restore(t *testing.T, m Mode, tool, rules string) {
	t.Helper()
	cmd := exec.Command(hostSbin+"/"+m.Multi(), tool, "--noflush")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", m.Multi(), tool, err, out)
	}
}

func TestDetectOnTheKernel(t *testing.T) {
	testenv.RequireRoot(t)
	requireBackends(t)
	for _, tc := range []struct {
		name  string
		write func(t *testing.T)
		want  Mode
	}{
		{"kubelet on legacy", func(t *testing.T) { restore(t, Legacy, "iptables-restore", canaryOnly) }, Legacy},
		{"kubelet on nft", func(t *testing.T) { restore(t, NFT, "iptables-restore", kubeletMangle) }, NFT},
		{"kubelet on legacy ip6tables, more rules on nft", func(t *testing.T) {
			restore(t, NFT, "iptables-restore", threeRules)
			restore(t, Legacy, "ip6tables-restore", canaryOnly)
		}, Legacy},
		{"no kubelet, rules on legacy", func(t *testing.T) { restore(t, Legacy, "iptables-restore", threeRules) }, Legacy},
		{"no kubelet, more rules on nft", func(t *testing.T) {
			restore(t, NFT, "iptables-restore", threeRules)
			restore(t, Legacy, "iptables-restore", oneRule)
		}, NFT},
		{"nothing", func(*testing.T) {}, NFT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.EnterNetns(t)
			tc.write(t)
			got, reason := Detect(context.Background(), hostSbin, ExecRunner)
			if got != tc.want {
				t.Errorf("Detect = %s (%s), want %s", got, reason, tc.want)
			}
		})
	}
}

// TestDetectCreatesNoTable: detection in an empty namespace leaves it empty in both backends
// (iptables-legacy-save -t mangle would have created the mangle table).
func TestDetectCreatesNoTable(t *testing.T) {
	testenv.RequireRoot(t)
	requireBackends(t)
	testenv.EnterNetns(t)
	Detect(context.Background(), hostSbin, ExecRunner)
	for _, m := range []Mode{NFT, Legacy} {
		for _, tool := range []string{"iptables-save", "ip6tables-save"} {
			out, err := exec.Command(hostSbin+"/"+m.Multi(), tool).Output()
			if err != nil {
				t.Fatalf("%s %s: %v", m.Multi(), tool, err)
			}
			if strings.Contains(string(out), "*") {
				t.Errorf("%s %s after Detect:\n%s", m.Multi(), tool, out)
			}
		}
	}
}
