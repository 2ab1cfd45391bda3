package bed

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestConflist(t *testing.T) {
	tests := []struct {
		name string
		cfg  NetworkConfig
	}{
		{name: "default", cfg: NetworkConfig{}},
		{name: "kubevs", cfg: NetworkConfig{
			PodCIDR: "10.245.0.0/24",
			IPAM:    map[string]any{"type": "kubevs-ipam"},
			Chain:   []map[string]any{{"type": "kubevs", "socket": "/run/kubevs/proxier.sock"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.setDefaults()
			got, err := tc.cfg.conflist("/var/lib/bed/ipam")
			if err != nil {
				t.Fatal(err)
			}
			// It is a conflist libcni accepts, with the plugins in chain order.
			list, err := libcni.ConfListFromBytes(got)
			if err != nil {
				t.Fatalf("libcni rejects the conflist: %v", err)
			}
			var types []string
			for _, p := range list.Plugins {
				types = append(types, p.Network.Type)
			}
			want := []string{"bridge", "portmap"}
			for _, c := range tc.cfg.Chain {
				want = append(want, c["type"].(string))
			}
			if diff := cmp.Diff(want, types); diff != "" {
				t.Errorf("plugin chain (-want +got):\n%s", diff)
			}
			// kubevs sets hairpin itself; the bed must not do it for the plugin.
			if strings.Contains(string(got), "hairpin") {
				t.Errorf("conflist sets hairpin mode:\n%s", got)
			}
			golden(t, filepath.Join("testdata", "conflist-"+tc.name+".json"), got)
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}
