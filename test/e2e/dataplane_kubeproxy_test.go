package e2e

// The data plane of kubevs against kube-proxy's IPVS mode, on one node in one run (issue 12:
// "ClusterIP connections/s >= 90 % of direct", and where the cost of a path is IPVS's own
// rather than kubevs's). kube-proxy v1.36.3 programs the node first and the six paths of
// dataplane_test.go are measured; kube-proxy stops, kubevs-proxier takes the node over with
// the same KubeProxyConfiguration (the takeover of takeover_test.go), and the same paths are
// measured again. The direct paths are measured in both phases, so each proxier's
// through/direct ratio is read against its own phase's direct rate: a slower moment of the
// emulated machine moves both. Judged: neither proxier's paths are broken, and kubevs's
// ClusterIP ratios are at least KUBEVS_E2E_DATAPLANE_PARITY (default 0.6; the 3 s slice of
// CI is noisy) of kube-proxy's. The table goes to the log and to dataplane-vs-kube-proxy.md
// and .json in KUBEVS_E2E_LOGDIR. It runs in the takeover guest (make takeover: 3 s a path)
// and in make bench-dataplane (60 s a path).

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// sideBySide is the JSON of a run.
type sideBySide struct {
	KubeProxy dataplaneReport `json:"kube_proxy"`
	Kubevs    dataplaneReport `json:"kubevs"`
}

func TestDataPlaneAgainstKubeProxy(t *testing.T) {
	kubeProxyBin, kubevsBin := requireTakeover(t)
	f := New(t)
	config := writeKubeProxyConfig(t, f)
	svc, server, client := dataPlaneService(f)
	paths := dataPlanePaths(f, svc, server, client)
	total := dataPlaneDuration(t)
	parity := envFloat(t, "KUBEVS_E2E_DATAPLANE_PARITY", 0.6)
	f.Timeout = max(f.Timeout, kubeProxySyncTimeout)

	kp := startProc(t, f, "kube-proxy", kubeProxyBin, "--config="+config, "--v=2")
	f.Eventually("kube-proxy's first sync", func(ctx context.Context) error {
		if err := kp.ready(kubeProxyHealthz)(ctx); err != nil {
			return err
		}
		return kubeProxySynced(ctx)
	})
	expectDataPlane(f, svc, server)
	var run sideBySide
	run.KubeProxy = measureDataPlane(t, f, paths, total)
	if err := kp.Stop(30 * time.Second); err != nil {
		t.Errorf("stop kube-proxy: %v", err)
	}

	kv := startProc(t, f, "kubevs-proxier", kubevsBin, "--config="+config)
	f.Eventually("kubevs-proxier is ready", kv.ready(proxierReadyz))
	expectDataPlane(f, svc, server)
	run.Kubevs = measureDataPlane(t, f, paths, total)

	md := sideBySideMarkdown(run)
	t.Logf("data plane, kube-proxy then kubevs:\n%s", md)
	writeDataplane(t, "dataplane-vs-kube-proxy", run, md)
	checkDataPlane(t, "kube-proxy: ", run.KubeProxy, 0.5)
	checkDataPlane(t, "kubevs: ", run.Kubevs, 0.5)
	for i, kvr := range run.Kubevs.Ratios {
		kpr := run.KubeProxy.Ratios[i]
		if strings.Contains(kvr.Through, "ClusterIP") && kvr.Rate < parity*kpr.Rate {
			t.Errorf("%s: kubevs %.2f of direct, kube-proxy %.2f: want at least %.2f of kube-proxy's", kvr.Through, kvr.Rate, kpr.Rate, parity)
		}
	}
}

// sideBySideMarkdown renders both phases: each path's rate and p99 under each proxier, then
// each proxier's through/direct ratios and kubevs's over kube-proxy's.
func sideBySideMarkdown(r sideBySide) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data plane %s: kube-proxy ipvs, then kubevs-proxier, on one node; %d workers, %.0f s per path in %d rounds per proxier\n\n",
		r.Kubevs.Date, r.Kubevs.Workers, r.Kubevs.Seconds, r.Kubevs.Rounds)
	b.WriteString("| path | kube-proxy: connections/s (p99) | kubevs: connections/s (p99) | failed (kube-proxy / kubevs) |\n| --- | --- | --- | --- |\n")
	for i, kv := range r.Kubevs.Paths {
		kp := r.KubeProxy.Paths[i]
		fmt.Fprintf(&b, "| %s | %.0f (%.2f ms) | %.0f (%.2f ms) | %d / %d |\n", kv.Name, kp.PerSec, kp.P99MS, kv.PerSec, kv.P99MS, kp.Errors, kv.Errors)
	}
	b.WriteString("\n| through / direct, connections/s | kube-proxy | kubevs | kubevs / kube-proxy |\n| --- | --- | --- | --- |\n")
	for i, kv := range r.Kubevs.Ratios {
		kp := r.KubeProxy.Ratios[i]
		fmt.Fprintf(&b, "| %s / %s | %.2f | %.2f | %.2f |\n", kv.Through, kv.Direct, kp.Rate, kv.Rate, kv.Rate/kp.Rate)
	}
	return b.String()
}
