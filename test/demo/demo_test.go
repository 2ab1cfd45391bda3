package demo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubevs/kubevs/internal/testenv"
)

// TestDemo runs the whole demo, as make demo does, so CI keeps it working. It needs the test
// VM and the binaries test/scripts/e2e.sh builds (see ConfigFromEnv), so make e2e runs it in
// its VM after the e2e suite. Without those binaries it skips, also in strict mode (make
// vm-integration and make unit do not build them; make e2e does); given them outside the
// VM it fails in strict mode.
func TestDemo(t *testing.T) {
	cfg := ConfigFromEnv(os.Getenv, filepath.Join("..", ".."))
	if cfg.KubevsDir == "" || cfg.ToolsDir == "" || len(cfg.ControlPlaneBin) == 0 {
		t.Skip("needs KUBEVS_BIN, KUBEVS_E2E_BIN and KUBEVS_CONTROL_PLANE_BIN in the test VM: run by test/scripts/e2e.sh (make e2e) and make demo")
	}
	if !testenv.InVM() {
		if testenv.Strict() {
			t.Fatal("the demo installs into /opt/cni/bin and /etc/cni/net.d: it runs only in the test VM (KUBEVS_IN_VM=1)")
		}
		t.Skip("the demo runs only in the test VM (make e2e, make demo)")
	}
	testenv.RequireRoot(t)
	if err := Run(context.Background(), cfg, t.Output()); err != nil {
		t.Fatal(err)
	}
}
