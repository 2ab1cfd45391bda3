package plugin

import (
	"os"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// TestExampleConflist keeps the example in README.md (testdata/example.conflist) valid: its
// kubevs entry, as libcni hands it over, parses.
func TestExampleConflist(t *testing.T) {
	b, err := os.ReadFile("testdata/example.conflist")
	if err != nil {
		t.Fatal(err)
	}
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	last := l.Plugins[len(l.Plugins)-1]
	pc, err := libcni.InjectConf(last, map[string]any{"name": l.Name, "cniVersion": l.CNIVersion})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(pc.Bytes)
	if err != nil {
		t.Fatalf("example kubevs entry: %v", err)
	}
	if !c.Launch.Enabled || c.Launch.ConfigPath != "/etc/kubevs/proxier.yaml" {
		t.Errorf("example parsed to %+v", c.Launch)
	}
}
