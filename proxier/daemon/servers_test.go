package daemon

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"

	"github.com/kubevs/kubevs/proxier/metrics"
	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// TestStartServersMetricsOff: metricsDisabled starts no metrics server (kube-proxy's
// --metrics-bind-address=""), the node API and the health server still run, and the daemon
// runs and stops cleanly without it.
func TestStartServersMetricsOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  bool
		want []string
	}{
		{"metrics on", false, []string{"node API", "metrics server", "health server"}},
		{"metrics off", true, []string{"node API", "health server"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			if tc.off {
				cfg.MetricsBindAddress, cfg.MetricsDisabled = "", true
			}
			d, err := New(Options{Kernel: newFakeKernel().kernel(), Config: cfg, Client: fake.NewClientset(), Metrics: metrics.New()})
			if err != nil {
				t.Fatal(err)
			}
			_, ctx := ktesting.NewTestContext(t)
			ctx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			t.Cleanup(func() { cancel(); wg.Wait() })
			var names []string
			serve := func(name string, run func(context.Context) error) {
				names = append(names, name)
				wg.Add(1)
				go func() { defer wg.Done(); _ = run(ctx) }() // ends, closing its listener, with ctx
			}
			if err := d.startServers(ctx, serve); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, names); d != "" {
				t.Errorf("servers started (-want +got):\n%s", d)
			}
		})
	}
}

// TestRunWithMetricsOff: a whole daemon with metricsDisabled syncs and stops without error.
func TestRunWithMetricsOff(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.MetricsBindAddress, cfg.MetricsDisabled = "", true
	h := startWith(t, k.kernel(), cfg)
	eventually(t, "the first sync", func() bool { return h.d.Ready() })
	h.stop()
}

// The first sync leaves the node API's ready mark (the CNI plugin's STATUS then tolerates a
// late answer), and it stops counting when the proxier stops.
func TestFirstSyncMarksTheNodeAPIReady(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.MetricsBindAddress, cfg.MetricsDisabled = "", true
	h := startWith(t, k.kernel(), cfg)
	eventually(t, "the first sync", func() bool { return h.d.Ready() })
	eventually(t, "the ready mark", func() bool { return nodeapi.WasReady(cfg.NodeAPISocket) })
	h.stop()
	if nodeapi.WasReady(cfg.NodeAPISocket) {
		t.Error("the mark counts with the proxier stopped")
	}
}
