package demo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubevs/kubevs/internal/testenv"
)

// TestDemo runs the whole demo, as make demo does, so CI keeps it working. It needs the test
// VM and what test/scripts/e2e.sh or demo.sh builds (see ConfigFromEnv); in strict mode a
// missing piece fails the test.
func TestDemo(t *testing.T) {
	testenv.RequireVM(t)
	testenv.RequireRoot(t)
	cfg := ConfigFromEnv(os.Getenv, filepath.Join("..", ".."))
	if cfg.KubevsDir == "" || cfg.ToolsDir == "" || len(cfg.ControlPlaneBin) == 0 {
		msg := "needs KUBEVS_BIN, KUBEVS_E2E_BIN and KUBEVS_CONTROL_PLANE_BIN (test/scripts/e2e.sh sets them)"
		if testenv.Strict() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if err := Run(context.Background(), cfg, t.Output()); err != nil {
		t.Fatal(err)
	}
}
