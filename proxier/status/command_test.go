package status

import (
	"testing"

	"github.com/kubevs/kubevs/plugin"
)

// TestCommandMatchesPlugin keeps `kubevs status` (which execs `kubevs-proxier status`) and
// the proxier's subcommand on one name.
func TestCommandMatchesPlugin(t *testing.T) {
	if plugin.StatusCommand != Command {
		t.Fatalf("plugin.StatusCommand %q != status.Command %q", plugin.StatusCommand, Command)
	}
}
