package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// TestNodeAPISocketGoesToTheDaemonSetProxier: a proxier started by the CNI plugin's
// supervisor and one started otherwise (a DaemonSet's) on one node. In either order the
// DaemonSet's ends up serving the node API socket and the supervised one ends with
// ErrYielded (kubevs-proxier exits nodeapi.ExitYielded, and its supervisor stops).
func TestNodeAPISocketGoesToTheDaemonSetProxier(t *testing.T) {
	for _, tc := range []struct {
		name            string
		supervisedFirst bool
	}{
		{name: "DaemonSet proxier starts second and takes the socket over", supervisedFirst: true},
		{name: "supervised proxier starts second and yields at once", supervisedFirst: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			supCfg, dsCfg := testConfig(t), testConfig(t)
			dsCfg.NodeAPISocket = supCfg.NodeAPISocket
			startSup := func() *harness {
				return startWithOptions(t, Options{Kernel: newFakeKernel().kernel(), Config: supCfg, Supervised: true})
			}
			startDS := func() *harness { return startWith(t, newFakeKernel().kernel(), dsCfg) }
			var sup, ds *harness
			if tc.supervisedFirst {
				sup = startSup()
				eventually(t, "the supervised proxier's first sync", func() bool { return sup.d.Ready() })
				ds = startDS()
			} else {
				ds = startDS()
				eventually(t, "the DaemonSet proxier's first sync", func() bool { return ds.d.Ready() })
				sup = startSup()
			}
			select {
			case err := <-sup.done:
				sup.cancel = nil // stopped: the harness must not stop it again
				if !errors.Is(err, ErrYielded) {
					t.Fatalf("supervised proxier's Run = %v, want ErrYielded", err)
				}
			case err := <-ds.done:
				ds.cancel = nil
				t.Fatalf("DaemonSet proxier's Run ended: %v", err)
			case <-time.After(takeOverWait + 15*time.Second):
				t.Fatal("the supervised proxier is still running")
			}
			eventually(t, "the DaemonSet proxier's first sync", func() bool { return ds.d.Ready() })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := nodeapi.NewClient(dsCfg.NodeAPISocket).Status(ctx); err != nil {
				t.Errorf("node API after the handover: %v", err)
			}
			ds.stop()
		})
	}
}
