package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/test/bed"
)

// What configureKubevs put on the node.
var (
	// proxierRunning: the bed runs kubevs-proxier; Service scenarios need it.
	proxierRunning bool
	// pluginInChain: the conflist ends with the kubevs plugin.
	pluginInChain bool
	// proxier is how the bed starts kubevs-proxier, for scenarios that restart it.
	proxier bed.Component
	// launchConfig is the proxier config the plugin's launch stanza names.
	launchConfig string
	// proxierConfigPath is the configuration the bed's proxier runs with (`kubevs status
	// --config` reads it too); empty without a proxier.
	proxierConfigPath string
	// kubevsBinDir holds kubevs's own binaries (KUBEVS_BIN), empty when none were given;
	// controlPlaneDirs are where etcd, kube-apiserver and kube-proxy were found.
	kubevsBinDir     string
	controlPlaneDirs []string
)

// writeLaunchConfig writes the config the plugin passes to a proxier it launches: the bed's
// node, admin kubeconfig and pod ranges, as the bed runs its own proxier.
func writeLaunchConfig(b *bed.Bed) error {
	if launchConfig == "" {
		return nil
	}
	text := proxierConfig(map[string]string{"nodeName": b.NodeName(), "kubeconfig": b.Kubeconfig}, b.PodCIDRs())
	if err := os.WriteFile(launchConfig, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write proxier launch config: %w", err)
	}
	return nil
}

// proxierConfig renders a ProxierConfiguration with the given string fields (sorted) and
// clusterCIDRs.
func proxierConfig(fields map[string]string, cidrs []string) string {
	var b strings.Builder
	b.WriteString("apiVersion: kubevs.io/v1alpha1\nkind: ProxierConfiguration\n")
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		fmt.Fprintf(&b, "%s: %s\n", k, fields[k])
	}
	if len(cidrs) > 0 {
		b.WriteString("clusterCIDRs:\n")
		for _, c := range cidrs {
			fmt.Fprintf(&b, "- %q\n", c)
		}
	}
	return b.String()
}

// RequireProxier marks a scenario that needs kubevs-proxier on the node (Services, that is).
// On the host, which has no IPVS, it always skips: make e2e runs it in the VM. In the VM it
// skips without a proxier, or fails when CI must run everything (KUBEVS_STRICT or CI set;
// test/scripts/e2e.sh starts the proxier whenever it built one).
func RequireProxier(t testing.TB) {
	t.Helper()
	require(t, proxierRunning, "kubevs-proxier on the node: set KUBEVS_BIN and KUBEVS_E2E_PROXIER=1")
}

// RequirePlugin marks a scenario that needs the kubevs chained plugin in the node's conflist
// as well as the proxier (hairpin, registrations). Same rules as RequireProxier.
func RequirePlugin(t testing.TB) {
	t.Helper()
	RequireProxier(t)
	require(t, pluginInChain, "the kubevs plugin in the conflist: set KUBEVS_BIN and KUBEVS_E2E_PLUGIN=1")
}

func require(t testing.TB, ok bool, what string) {
	t.Helper()
	switch {
	case ok:
		return
	case !testenv.InVM():
		t.Skip("needs IPVS and " + what + ": runs in the test VM (make e2e)")
	case testenv.Strict():
		t.Fatal("needs " + what)
	default:
		t.Skip("needs " + what + " (test/scripts/e2e.sh does)")
	}
}

// proxierReadyz answers 200 once kubevs-proxier has synced (its default health address).
const proxierReadyz = "http://127.0.0.1:10256/readyz"

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// configureKubevs puts kubevs's own binaries into the bed when asked to. The bed's own
// scenarios run with the reference plugins only; Service scenarios set:
//
//	KUBEVS_BIN               dir of kubevs, kubevs-ipam, kubevs-proxier (make build's bin/)
//	KUBEVS_E2E_IPAM=1        use kubevs-ipam instead of host-local
//	KUBEVS_E2E_PLUGIN=1      append the kubevs chained plugin to the conflist
//	                         (launch on: a proxier only starts when none listens)
//	KUBEVS_E2E_PROXIER=1     start kubevs-proxier on the node; its arguments are
//	                         --config=LOGDIR/kubevs-proxier.yaml (clusterCIDRs: the bed's pod
//	                         ranges, both families) --kubeconfig=KUBECONFIG --node-name=NODE
//	                         followed by KUBEVS_E2E_PROXIER_ARGS (space-separated); the bed
//	                         waits for its /readyz
//
// KUBEVS_BIN is searched for CNI plugins after the tools dir either way. The bed is
// dual-stack unless KUBEVS_E2E_IPV4_ONLY=1 (then the DualStack scenarios skip).
func configureKubevs(cfg *bed.Config, bins *binaries) error {
	cfg.Network.IPv4Only = os.Getenv("KUBEVS_E2E_IPV4_ONLY") == "1"
	kubevsBinDir, controlPlaneDirs = bins.kubevs, bins.controlPlane
	if bins.kubevs == "" {
		return nil
	}
	cfg.Network.CNIBinDirs = append(cfg.Network.CNIBinDirs, bins.kubevs)
	if os.Getenv("KUBEVS_E2E_IPAM") == "1" {
		cfg.Network.IPAM = map[string]any{"type": "kubevs-ipam"}
	}
	if os.Getenv("KUBEVS_E2E_PLUGIN") == "1" {
		pluginInChain = true
		// Launch on: with the bed's proxier listening it does nothing; a scenario that stops
		// that proxier sees the next ADD or STATUS launch one (writeLaunchConfig fills in
		// the config once the bed's kubeconfig exists).
		launchConfig = filepath.Join(cfg.LogDir, "kubevs-proxier-launch.yaml")
		cfg.Network.Chain = append(cfg.Network.Chain, map[string]any{"type": "kubevs", "launch": map[string]any{
			"enabled":       true,
			"proxierBinary": filepath.Join(bins.kubevs, "kubevs-proxier"),
			"configPath":    launchConfig,
			"logFile":       filepath.Join(cfg.LogDir, "kubevs-proxier-launched.log"),
		}})
	}
	if os.Getenv("KUBEVS_E2E_PROXIER") == "1" {
		proxierRunning = true
		extra := strings.Fields(os.Getenv("KUBEVS_E2E_PROXIER_ARGS"))
		// The node name and kubeconfig come from flags: the kubeconfig exists only once the
		// bed is up.
		configPath := filepath.Join(cfg.LogDir, "kubevs-proxier.yaml")
		proxierConfigPath = configPath
		if err := os.WriteFile(configPath, []byte(proxierConfig(nil, cfg.Network.PodCIDRs())), 0o600); err != nil {
			return fmt.Errorf("write proxier config: %w", err)
		}
		proxier = bed.Component{
			Name:   "kubevs-proxier",
			Binary: filepath.Join(bins.kubevs, "kubevs-proxier"),
			Args: func(b *bed.Bed) []string {
				return append([]string{"--config=" + configPath, "--kubeconfig=" + b.Kubeconfig, "--node-name=" + b.NodeName()}, extra...)
			},
			Ready: func(ctx context.Context, _ *bed.Bed) error { return httpOK(ctx, proxierReadyz) },
		}
		cfg.Components = append(cfg.Components, proxier)
	}
	return nil
}
