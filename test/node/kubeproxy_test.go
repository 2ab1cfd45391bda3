//go:build nodee2e

package node

// The comparison column of issue 10: the same node without kubevs, as a kubeadm node with
// kube-proxy has it. The kubelet's CNI network is a conflist of the reference plugins (bridge
// with isGateway and hairpinMode, host-local over the Node's spec.podCIDRs[0], portmap;
// containerd runs loopback itself), and kube-proxy v1.36.3 in IPVS mode runs on the node as a
// bed process with test/bench's KubeProxyConfiguration (the one the benchmark measures).
// hairpinMode is what makes a pod reach itself through a Service here: kube-proxy does not
// set hairpin on the bridge ports, the bridge plugin does.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubevs/kubevs/test/bed"
	"github.com/kubevs/kubevs/test/bench"
)

// Proxiers TestUpstreamE2E runs the specs against (KUBEVS_UPSTREAM_PROXIER).
const (
	proxierKubevs    = "kubevs"
	proxierKubeProxy = "kube-proxy"
)

// bridgeConflistName is the file the kube-proxy column's network is written to.
const bridgeConflistName = "10-bridge.conflist"

// kubeProxyMetrics serves kubeproxy_sync_proxy_rules_duration_seconds (bench's address).
const kubeProxyMetrics = "http://127.0.0.1:10249/metrics"

// bridgeConflist is the reference plugins' conflist over podCIDR, the Node's first pod range.
// ipMasq stays off, as in kubevs's own conflist: the bridge plugin masquerades whatever leaves
// the pod's own range, so a pod's traffic to a pod on the other node reached it from the node's
// address, which a cluster network does not do (upstream's "preserve source pod IP" and the
// Conntrack specs that look for the client pod's IP failed on two nodes). The bed routes every
// node's pod range to its node (routePodRanges, shareRoutesFor), so nothing needs the masquerade.
func bridgeConflist(podCIDR string) ([]byte, error) {
	if podCIDR == "" {
		return nil, fmt.Errorf("bridge conflist: empty pod range")
	}
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "k8s-pod-network",
		"plugins": []map[string]any{
			{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]any{{{"subnet": podCIDR}}},
					"routes": []map[string]any{{"dst": "0.0.0.0/0"}},
				},
			},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}, "", "  ")
}

// writeBridgeConflist writes bridgeConflist into the kubelet's CNI conf dir.
func writeBridgeConflist(t *testing.T, podCIDR string) string {
	t.Helper()
	data, err := bridgeConflist(podCIDR)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cniConfDir, bridgeConflistName)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}

// startKubeProxy runs kube-proxy --proxy-mode=ipvs (through bench.KubeProxyConfig) as the
// node named node, with the kubeconfig (the bed's admin one), and waits for its first
// completed sync.
func startKubeProxy(ctx context.Context, t *testing.T, e env, kubeconfig, node string) *bed.Process {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "kube-proxy.yaml")
	if err := os.WriteFile(cfg, []byte(bench.KubeProxyConfig(kubeconfig, node, bed.ClusterCIDR)), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := bed.StartProcess(ctx, e.logDir, "kube-proxy", find(t, e.controlPlane, "kube-proxy"),
		"--config="+cfg, "--v=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(20 * time.Second) })
	t.Cleanup(func() { keepKubeProxyMetrics(t, e.logDir) }) // runs before the Stop above
	client := &http.Client{Timeout: 5 * time.Second}
	if err := pollFor(ctx, 10*time.Minute, p, func() error {
		n, err := kubeProxySyncs(ctx, client)
		if err != nil {
			return err
		}
		if n < 1 {
			return fmt.Errorf("kube-proxy: no sync yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("kube-proxy's first sync: %v", err)
	}
	return p
}

// kubeProxySyncs reads how many syncs kube-proxy has completed from its metrics.
func kubeProxySyncs(ctx context.Context, c *http.Client) (float64, error) {
	page, err := kubeProxyMetricsPage(ctx, c)
	if err != nil {
		return 0, err
	}
	return parseSyncCount(page)
}

// kubeProxyMetricsPage GETs kube-proxy's metrics page.
func kubeProxyMetricsPage(ctx context.Context, c *http.Client) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, kubeProxyMetrics, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kubeProxyMetrics, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", kubeProxyMetrics, resp.Status)
	}
	return data, nil
}

// keepKubeProxyMetrics saves kube-proxy's last metrics page in logDir (kube-proxy-metrics.txt)
// and logs its syncs' count and mean duration: the comparison column's failures on a bound
// (a spec's 30 s endpoint lag) are judged by how long kube-proxy's syncs took in that run.
func keepKubeProxyMetrics(t *testing.T, logDir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	page, err := kubeProxyMetricsPage(ctx, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Logf("kube-proxy's metrics at the end: %v", err)
		return
	}
	path := filepath.Join(logDir, "kube-proxy-metrics.txt")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Logf("keep kube-proxy's metrics: %v", err)
	}
	n, mean, err := parseSyncMean(page)
	if err != nil {
		t.Logf("kube-proxy's metrics in %s: %v", path, err)
		return
	}
	t.Logf("kube-proxy: %.0f syncs, mean %.2f s (kubeproxy_sync_proxy_rules_duration_seconds; the page is in %s)", n, mean, path)
}

// parseSyncMean returns the count and mean duration (seconds) of kube-proxy's IPv4 syncs
// from a metrics page (bench.KubeProxySyncs).
func parseSyncMean(page []byte) (count, mean float64, err error) {
	count, seconds, found, err := bench.KubeProxySyncs(string(page))
	if err != nil {
		return 0, 0, err
	}
	if !found || count == 0 {
		return 0, 0, fmt.Errorf("no sync yet in kube-proxy's metrics")
	}
	return count, seconds / count, nil
}

// parseSyncCount returns how many IPv4 syncs kube-proxy has completed from a metrics page;
// a page without the histogram is an error.
func parseSyncCount(page []byte) (float64, error) {
	count, _, found, err := bench.KubeProxySyncs(string(page))
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("no kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} in the metrics")
	}
	return count, nil
}

// What the first node shares for the second's kube-proxy in a two-node run: the admin
// kubeconfig with the API server at the first node's link address, and the second Node's
// first pod range (written last: its presence means both are there).
const (
	sharedKubeProxyKubeconfig = "second.kube-proxy.kubeconfig"
	sharedPodCIDR             = "second.podcidr"
)

// shareKubeProxyFor waits until the node peer has a pod range and shares what its kube-proxy
// and bridge conflist need (sharedKubeProxyKubeconfig, sharedPodCIDR).
func shareKubeProxyFor(ctx context.Context, t *testing.T, b *bed.Bed, peer nodeSpec, shared string) {
	t.Helper()
	n := waitNodeNamed(ctx, t, b.Client, peer.name, "registered with a pod range", hasPodRange)
	if err := b.WriteRemoteKubeconfig(filepath.Join(shared, sharedKubeProxyKubeconfig), firstNodeServer()); err != nil {
		t.Fatal(err)
	}
	shareFile(t, shared, sharedPodCIDR, []byte(n.Spec.PodCIDRs[0]))
}

// startSharedKubeProxy is the second node's half of shareKubeProxyFor: it waits for the
// shared pod range, runs kube-proxy as the second node and writes the bridge conflist.
func startSharedKubeProxy(ctx context.Context, t *testing.T, e env, shared string, kubelet *bed.Process) {
	t.Helper()
	var cidr []byte
	if err := pollFor(ctx, 30*time.Minute, kubelet, func() (err error) {
		cidr, err = os.ReadFile(filepath.Join(shared, sharedPodCIDR))
		return err
	}); err != nil {
		t.Fatalf("waiting for the first node to share this node's pod range: %v", err)
	}
	startKubeProxy(ctx, t, e, filepath.Join(shared, sharedKubeProxyKubeconfig), secondNode.name)
	t.Logf("kube-proxy --proxy-mode=ipvs synced; CNI network %s over %s", writeBridgeConflist(t, string(cidr)), cidr)
}
