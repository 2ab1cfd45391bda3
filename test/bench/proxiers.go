package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubevs/kubevs/test/bed"
)

// Names of the two proxiers in reports.
const (
	KubeProxyName = "kube-proxy ipvs"
	KubevsName    = "kubevs"
)

// metricsURL is where both proxiers serve metrics by default (kube-proxy's address, which
// kubevs-proxier keeps).
const metricsURL = "http://127.0.0.1:10249/metrics"

// goroutinesURL is kube-proxy's goroutine dump with enableProfiling.
const goroutinesURL = "http://127.0.0.1:10249/debug/pprof/goroutine?debug=2"

// Proxier says how to run one proxier and how to undo what it programmed.
type Proxier struct {
	Name   string
	Binary string
	// Args run it; CleanupArgs run it once to remove its kernel state and exit.
	Args, CleanupArgs []string
	// MetricsURL serves kubeproxy_sync_proxy_rules_duration_seconds_count.
	MetricsURL string
	// GoroutinesURL, if set, serves a goroutine dump (pprof, debug=2): the harness saves one
	// into the log dir when the proxier misses a deadline, to show where it is stuck.
	GoroutinesURL string
	// ProfileURL, if set, serves Go's CPU profile (Config.Profile).
	ProfileURL string
}

// KubeProxyConfig is the KubeProxyConfiguration kube-proxy runs with: IPVS mode, rr, the
// bed's kubeconfig, node and pod range, kube-proxy's defaults for everything else (sync
// periods included). conntrack.maxPerCore 0 leaves the guest's conntrack table alone;
// profiling serves /debug/pprof on the metrics address (for goroutine dumps).
func KubeProxyConfig(kubeconfig, node, clusterCIDR string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
clusterCIDR: %q
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
enableProfiling: true
conntrack:
  maxPerCore: 0
ipvs:
  scheduler: rr
`, kubeconfig, node, clusterCIDR)
}

// KubeProxy is kube-proxy --proxy-mode=ipvs through a KubeProxyConfiguration written into
// dir; its cleanup is `kube-proxy --cleanup` with the same file.
func KubeProxy(binary, dir string, b *bed.Bed) (Proxier, error) {
	path := filepath.Join(dir, "kube-proxy-config.yaml")
	if err := os.WriteFile(path, []byte(KubeProxyConfig(b.Kubeconfig, b.NodeName(), b.PodCIDR())), 0o600); err != nil {
		return Proxier{}, fmt.Errorf("write kube-proxy config: %w", err)
	}
	return Proxier{
		Name: KubeProxyName, Binary: binary, MetricsURL: metricsURL,
		GoroutinesURL: goroutinesURL, ProfileURL: profileURL,
		Args:        []string{"--config=" + path, "--v=2"}, // V(2) logs each sync and its duration
		CleanupArgs: []string{"--config=" + path, "--cleanup"},
	}, nil
}

// Kubevs is kubevs-proxier with its defaults: only the kubeconfig and node name are given,
// and --profiling when profiling (Go's profiles on the metrics address).
func Kubevs(binary string, b *bed.Bed, profiling bool) Proxier {
	common := []string{"--kubeconfig=" + b.Kubeconfig, "--node-name=" + b.NodeName()}
	p := Proxier{
		Name: KubevsName, Binary: binary, MetricsURL: metricsURL,
		Args:        common,
		CleanupArgs: append([]string{"--cleanup"}, common...),
	}
	if profiling {
		p.Args = append(p.Args[:len(p.Args):len(p.Args)], "--profiling")
		p.ProfileURL = profileURL
	}
	return p
}

// Version asks the binary for its version (--version), for the report.
func (p Proxier) Version(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, p.Binary, "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// dumpGoroutines saves the proxier's goroutine dump as NAME-goroutines-WHAT.txt in logDir
// (nothing without a GoroutinesURL) and returns the file name.
func (p Proxier) dumpGoroutines(ctx context.Context, logDir, what string) (string, error) {
	if p.GoroutinesURL == "" {
		return "", nil
	}
	text, err := scrape(ctx, p.GoroutinesURL)
	if err != nil {
		return "", err
	}
	name := strings.ReplaceAll(p.Name, " ", "-") + "-goroutines-" + what + ".txt"
	if err := os.WriteFile(filepath.Join(logDir, name), []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("write goroutine dump: %w", err)
	}
	return name, nil
}

// cleanup runs the proxier's own cleanup, logging into logDir.
func (p Proxier) cleanup(ctx context.Context, logDir string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Binary, p.CleanupArgs...)
	out, err := cmd.CombinedOutput()
	name := strings.ReplaceAll(p.Name, " ", "-") + "-cleanup.log"
	_ = os.WriteFile(filepath.Join(logDir, name), out, 0o644)
	if err != nil {
		return fmt.Errorf("%s %s: %w (log %s)", p.Binary, strings.Join(p.CleanupArgs, " "), err, name)
	}
	return nil
}
