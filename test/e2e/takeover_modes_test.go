package e2e

// The takeover from kube-proxy's iptables and nftables modes (issue 11, migration guide 2b):
// what happens to live traffic when kube-proxy in one of those modes stops and kubevs-proxier
// starts on the same node, without `kube-proxy --cleanup` in between. The figures are
// reported, not judged (the blip of new connections, from when to when after kube-proxy's
// SIGTERM; the long-lived flows that broke; the rules kube-proxy left behind). Judged: that
// once kubevs runs, the Service follows an endpoint change (a new pod is reached, a deleted
// one no longer is): rules kube-proxy left that still answer for the Service would not.
//
// Each runs in a guest of its own (make takeover-from-iptables, make takeover-from-nftables):
// kube-proxy's leftovers would be the next scenario's starting state.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/proxier/netfilter"
)

func TestTakeoverFromKubeProxyIPTables(t *testing.T) { takeoverFromMode(t, "iptables") }

func TestTakeoverFromKubeProxyNFTables(t *testing.T) { takeoverFromMode(t, "nftables") }

func takeoverFromMode(t *testing.T, mode string) {
	kubeProxyBin, kubevsBin := requireTakeover(t)
	if mode == "nftables" {
		if _, err := exec.LookPath("nft"); err != nil {
			require(t, false, "nft (Debian's nftables: kube-proxy's nftables mode runs it; test/scripts/deps.sh installs it)")
		}
	}
	f := New(t)
	kvConfig := filepath.Join(f.Bed.LogDir, "kube-proxy-config.yaml")
	kpConfig := filepath.Join(f.Bed.LogDir, "kube-proxy-config-"+mode+".yaml")
	ipvs := kubeProxyConfig(f.Bed)
	for path, text := range map[string]string{kvConfig: ipvs, kpConfig: strings.Replace(ipvs, "mode: ipvs\n", "mode: "+mode+"\n", 1)} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start := func(name, bin string, args ...string) *procHandle { return startProc(t, f, name, bin, args...) }

	backends := f.CreatePods("backend", 2)
	client := f.CreatePod("client", "client")
	svc := f.CreateService("backend", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })

	// 1. kube-proxy in mode programs the node; traffic starts once its first sync is done.
	kp := start("kube-proxy-"+mode, kubeProxyBin, "--config="+kpConfig, "--v="+kubeProxyVerbosity)
	f.Timeout = max(f.Timeout, kubeProxySyncTimeout)
	f.Eventually("kube-proxy ("+mode+") has synced", func(ctx context.Context) error {
		if err := kp.ready(kubeProxyHealthz)(ctx); err != nil {
			return err
		}
		return kubeProxySynced(ctx)
	})
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(backends...)
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(backends...)
	t.Logf("kube-proxy's (%s) rules:\n%s", mode, kubeRules(t))

	ctx, stop := context.WithCancel(f.ctx)
	defer stop()
	traffic := startTakeoverTraffic(ctx, t, f, svc, client, backends, nil)
	time.Sleep(takeoverSettle)
	traffic.check("under kube-proxy alone ("+mode+")", false, time.Time{})

	// 2. kube-proxy -> kubevs-proxier (the same file with mode: ipvs, as the guide says), with
	// nothing removed in between.
	t0 := time.Now()
	if err := kp.Stop(30 * time.Second); err != nil {
		t.Errorf("stop kube-proxy: %v", err)
	}
	stopped := time.Since(t0)
	kv := start("kubevs-proxier-takeover", kubevsBin, "--config="+kvConfig)
	f.Eventually("kubevs-proxier is ready", kv.ready(proxierReadyz))
	ready := time.Since(t0)
	f.Eventually("kubevs-proxier programs the Service", func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, "ipvsadm", "-Ln", "--stats", "--exact").Output()
		if err != nil {
			return fmt.Errorf("ipvsadm: %w", err)
		}
		have := parseVSConns(string(out))
		for _, vs := range watchedVirtualServers(f, svc) {
			if _, ok := have[vs]; !ok {
				return fmt.Errorf("no virtual server %s yet:\n%s", vs, out)
			}
		}
		return nil
	})
	t.Logf("takeover from %s: kube-proxy ended %v after SIGTERM, kubevs-proxier ready %v, its virtual servers in %v",
		mode, stopped.Round(time.Millisecond), ready.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	time.Sleep(2 * takeoverSettle)
	fig := traffic.check("after the takeover from "+mode, false, t0)
	t.Logf("FIGURES takeover from %s: %d new connections attempted, %d failed; %s; %d of %d long-lived flows broke; control path %d failed, test process stalled up to %v",
		mode, fig.attempted, fig.failed, strings.Join(fig.blips, "; "), fig.brokenFlows, len(traffic.flows), fig.controlFailed, fig.stall.Round(time.Millisecond))
	rules := kubeRules(t)
	t.Logf("rules under kubevs after the takeover from %s:\n%s", mode, rules)
	var left []string
	for _, line := range strings.Split(rules, "\n") {
		if table, chain, ok := strings.Cut(line, " "); ok && (table == "nft" || !netfilter.Owned(table, chain)) {
			left = append(left, line)
		}
	}
	t.Logf("FIGURES takeover from %s: %d chains or tables of kube-proxy's left that kubevs does not own: %v", mode, len(left), left)
	stop()

	// 3. Judged: the Service now follows its endpoints through kubevs. A new backend must be
	// reached and a deleted one no longer answer.
	added := f.CreatePod("backend-2", "backend")
	if err := backends[0].Delete(f.ctx); err != nil {
		t.Fatalf("delete %s: %v", backends[0].Name, err)
	}
	f.Timeout = 2 * time.Minute
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(backends[1], added)
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(backends[1], added)
	if t.Failed() {
		path, _ := f.dumpNodeState()
		t.Logf("node state in %s", path)
	}
}

// kubeRules lists the KUBE-* chains of the nat and filter tables ("TABLE CHAIN", see
// kubeChains) and the nftables tables that are not iptables's own ("nft FAMILY TABLE").
func kubeRules(t *testing.T) string {
	t.Helper()
	out := kubeChains(t)
	if _, err := exec.LookPath("nft"); err != nil {
		return out
	}
	b, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		return out + fmt.Sprintf("\n(nft list tables: %v)", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "table" && !iptablesTable(f[2]) {
			out += "\nnft " + f[1] + " " + f[2]
		}
	}
	return out
}

// iptablesTable: the nftables tables iptables-nft itself writes.
func iptablesTable(name string) bool {
	switch name {
	case "filter", "nat", "mangle", "raw", "security":
		return true
	}
	return false
}
