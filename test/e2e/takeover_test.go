package e2e

// Live takeover from kube-proxy's IPVS mode (issue 11): the real kube-proxy programs the
// node, traffic flows, kube-proxy stops (SIGTERM: it leaves its rules in place) and
// kubevs-proxier starts with the same KubeProxyConfiguration file; then the way back. Across
// each switch every established connection keeps its backend, no new connection fails, and
// no virtual server is missing or re-created.
//
// The scenario is judged phase by phase: "under kube-proxy alone", "after the takeover" and
// "after the way back" each report what broke since the previous one. The first phase is
// kube-proxy's, reported and not judged; the switches and kubevs's phase must be clean.
// kube-proxy is "ready" once its first sync has finished (its metric), not when its healthz
// first answers: until then its iptables rules are not written, and before issue 11 the
// scenario sometimes switched away from a kube-proxy still in its first sync.

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/test/bed"
)

// kubeProxyHealthz answers 200 once kube-proxy has synced (the address the config file sets).
const kubeProxyHealthz = "http://127.0.0.1:10256/healthz"

// takeoverSettle is how long traffic runs after a switch before the flows are checked.
const takeoverSettle = 5 * time.Second

// kubeProxyMetrics is kube-proxy's metrics endpoint (the address the config file sets).
const kubeProxyMetrics = "http://127.0.0.1:10249/metrics"

// kubeProxyVerbosity: V(4) logs each sync and each virtual server kube-proxy adds or deletes,
// the timeline a reset is read against; V(5) adds each real server (KUBEVS_E2E_TAKEOVER_V).
var kubeProxyVerbosity = cmp.Or(os.Getenv("KUBEVS_E2E_TAKEOVER_V"), "4")

// kubeProxySyncTimeout bounds the waits for a first sync of kube-proxy (or kubevs-proxier):
// one took 1m9s, another over 3 min, in a TCG guest on a host running four other guests.
const kubeProxySyncTimeout = 10 * time.Minute

// trafficBeforeSync (KUBEVS_E2E_TAKEOVER_TRAFFIC_BEFORE_SYNC=1) starts the traffic as soon as
// kube-proxy's virtual servers exist, before its first sync has finished: the scenario's
// behaviour before issue 11, kept to show what kube-proxy's first sync does to live flows.
var trafficBeforeSync = os.Getenv("KUBEVS_E2E_TAKEOVER_TRAFFIC_BEFORE_SYNC") == "1"

// kubeProxySynced returns nil once kube-proxy has finished a sync of its IPv4 rules: its
// metric kubeproxy_sync_proxy_rules_last_timestamp_seconds is set at the end of each sync
// that wrote the node (virtual servers, ipsets, iptables), and is 0 before the first.
func kubeProxySynced(ctx context.Context) error {
	m, err := scrape(ctx, kubeProxyMetrics, 5*time.Second)
	if err != nil {
		return err
	}
	const metric = `kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}`
	if m[metric] > 0 {
		return nil
	}
	return fmt.Errorf("kube-proxy has not finished its first sync (%s)", metric)
}

// kubeProxySoak lengthens the phase under kube-proxy alone (KUBEVS_E2E_TAKEOVER_SOAK, a duration), to
// watch kube-proxy's own periodic syncs under load before any switch.
var kubeProxySoak = func() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("KUBEVS_E2E_TAKEOVER_SOAK"))
	return d
}()

// requireTakeover skips unless the node can run both proxiers: in the VM, kubevs-proxier and
// kube-proxy built, and no kubevs proxier of the bed's (nor a plugin that would launch one).
func requireTakeover(t *testing.T) (kubeProxy, kubevs string) {
	t.Helper()
	if !testenv.InVM() {
		t.Skip("needs IPVS and the real kube-proxy: runs in the test VM (make e2e)")
	}
	if proxierRunning || pluginInChain {
		t.Skip("needs a node without kubevs: run with KUBEVS_E2E_PROXIER=0 KUBEVS_E2E_PLUGIN=0 (see install/migrate-from-kube-proxy.md)")
	}
	kubevs = filepath.Join(kubevsBinDir, "kubevs-proxier")
	for _, d := range controlPlaneDirs {
		if p := filepath.Join(d, "kube-proxy"); fileExists(p) {
			kubeProxy = p
		}
	}
	if kubevsBinDir == "" || !fileExists(kubevs) || kubeProxy == "" {
		require(t, false, "kubevs-proxier (KUBEVS_BIN) and kube-proxy (test/scripts/control-plane.sh builds it)")
	}
	return kubeProxy, kubevs
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// kubeProxyConfig is a KubeProxyConfiguration as kubeadm writes it for IPVS mode, with the
// bed's kubeconfig, node and pod ranges. conntrack.maxPerCore 0 leaves the guest's conntrack
// table size alone.
func kubeProxyConfig(b *bed.Bed) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
clusterCIDR: %q
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
ipvs:
  scheduler: rr
`, b.Kubeconfig, b.NodeName(), strings.Join(b.PodCIDRs(), ","))
}

// writeKubeProxyConfig writes kubeProxyConfig for f's bed into its log dir and returns the
// path: the file both kube-proxy and kubevs-proxier start with.
func writeKubeProxyConfig(t *testing.T, f *Framework) string {
	t.Helper()
	config := filepath.Join(f.Bed.LogDir, "kube-proxy-config.yaml")
	if err := os.WriteFile(config, []byte(kubeProxyConfig(f.Bed)), 0o600); err != nil {
		t.Fatal(err)
	}
	return config
}

// TestTakeoverFromKubeProxy: kube-proxy -> kubevs-proxier -> kube-proxy on a live node.
func TestTakeoverFromKubeProxy(t *testing.T) {
	kubeProxyBin, kubevsBin := requireTakeover(t)
	f := New(t)
	config := writeKubeProxyConfig(t, f)
	start := func(name, bin string, args ...string) *procHandle { return startProc(t, f, name, bin, args...) }

	backends := f.CreatePods("backend", 2)
	client := f.CreatePod("client", "client")
	svc := f.CreateService("backend", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	watched := watchedVirtualServers(f, svc)

	// 1. kube-proxy alone programs the node. Its healthz answers 200 from its start, long
	// before its first sync has written the node (under a loaded TCG guest that sync takes
	// from 10 s to minutes, one ipset call an entry): traffic starts once the sync is done,
	// as on a node where kube-proxy has been running (see kubeProxySynced).
	kp := start("kube-proxy", kubeProxyBin, "--config="+config, "--v="+kubeProxyVerbosity)
	f.Timeout = max(f.Timeout, kubeProxySyncTimeout)
	f.Eventually("kube-proxy programs the Service", func(ctx context.Context) error {
		if err := kp.ready(kubeProxyHealthz)(ctx); err != nil {
			return err
		}
		if !trafficBeforeSync {
			if err := kubeProxySynced(ctx); err != nil {
				return err
			}
		}
		out, err := exec.CommandContext(ctx, "ipvsadm", "-Ln", "--stats", "--exact").Output()
		if err != nil {
			return fmt.Errorf("ipvsadm: %w", err)
		}
		have := parseVSConns(string(out))
		for _, vs := range watched {
			if _, ok := have[vs]; !ok {
				return fmt.Errorf("no virtual server %s yet:\n%s", vs, out)
			}
		}
		return nil
	})
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(backends...)
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(backends...)
	t.Logf("kube-proxy's netfilter chains:\n%s", kubeChains(t))

	// 2. Traffic for the whole scenario.
	ctx, stop := context.WithCancel(f.ctx)
	defer stop()
	traffic := startTakeoverTraffic(ctx, t, f, svc, client, backends, watched)
	if trafficBeforeSync {
		f.Eventually("kube-proxy's first sync, under traffic", func(ctx context.Context) error { return kubeProxySynced(ctx) })
	}
	time.Sleep(takeoverSettle + kubeProxySoak)
	traffic.check("under kube-proxy alone", false, time.Time{})

	// 3. kube-proxy -> kubevs-proxier, the same file.
	t0 := time.Now()
	if err := kp.Stop(30 * time.Second); err != nil {
		t.Errorf("stop kube-proxy: %v", err)
	}
	stopped := time.Since(t0)
	kv := start("kubevs-proxier-takeover", kubevsBin, "--config="+config)
	f.Eventually("kubevs-proxier is ready", kv.ready(proxierReadyz))
	t.Logf("takeover: kube-proxy ended %v after SIGTERM, kubevs-proxier ready %v after SIGTERM", stopped.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	time.Sleep(takeoverSettle)
	traffic.check("after the takeover", true, t0)
	chains := kubeChains(t)
	t.Logf("netfilter chains under kubevs:\n%s", chains)
	for _, line := range strings.Split(chains, "\n") {
		if table, chain, ok := strings.Cut(line, " "); ok && !netfilter.Owned(table, chain) {
			t.Errorf("chain %s of table %s left behind: kubevs owns neither it nor its removal", chain, table)
		}
	}
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(backends...)

	// 4. The way back: kubevs-proxier -> kube-proxy.
	t0 = time.Now()
	if err := kv.Stop(30 * time.Second); err != nil {
		t.Errorf("stop kubevs-proxier: %v", err)
	}
	stopped = time.Since(t0)
	kp = start("kube-proxy-back", kubeProxyBin, "--config="+config, "--v="+kubeProxyVerbosity)
	f.Eventually("kube-proxy is healthy again and has synced", func(ctx context.Context) error {
		if err := kp.ready(kubeProxyHealthz)(ctx); err != nil {
			return err
		}
		return kubeProxySynced(ctx)
	})
	t.Logf("way back: kubevs-proxier ended %v after SIGTERM, kube-proxy synced %v after SIGTERM", stopped.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	time.Sleep(takeoverSettle)
	traffic.check("after the way back", true, t0)
	t.Logf("netfilter chains under kube-proxy again:\n%s", kubeChains(t))
	stop()
	if t.Failed() {
		path, _ := f.dumpNodeState()
		t.Logf("node state in %s", path)
	}
}

// watchedVirtualServers are the virtual servers of svc's ports, ClusterIP and NodePort, as
// the IPVS sampler keys them.
func watchedVirtualServers(f *Framework, svc *corev1.Service) []string {
	var out []string
	for _, nodePort := range []bool{false, true} {
		for _, p := range []struct{ proto, name string }{{"TCP", "http"}, {"TCP", "tcp-echo"}, {"UDP", "udp-echo"}} {
			out = append(out, vsKey(p.proto, servicePortAddr(f, svc, p.name, nodePort)))
		}
	}
	return out
}

// kubeChains lists the KUBE-* chains of the nat and filter tables, one "TABLE CHAIN" a line.
func kubeChains(t *testing.T) string {
	t.Helper()
	var out []string
	for _, table := range []string{"nat", "filter"} {
		b, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatalf("iptables-save -t %s: %v", table, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, ":KUBE-"); ok {
				out = append(out, table+" KUBE-"+strings.Fields(name)[0])
			}
		}
	}
	return strings.Join(out, "\n")
}
