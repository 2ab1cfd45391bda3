package image

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWriteStaticImage(t *testing.T) {
	dir := t.TempDir()
	pause := filepath.Join(dir, "pause")
	if err := os.WriteFile(pause, []byte("ELF pause"), 0o700); err != nil {
		t.Fatal(err)
	}
	o := StaticOptions{Files: map[string]string{"/pause": pause, "/usr/bin/probe": pause}, Entrypoint: []string{"/pause"}}
	out1, out2 := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	d1, err := WriteStatic(out1, "registry.k8s.io/pause:3.10.2", o, "")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := WriteStatic(out2, "registry.k8s.io/pause:3.10.2", o, "")
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(out1)
	b2, _ := os.ReadFile(out2)
	if d1 != d2 || string(b1) != string(b2) {
		t.Errorf("two builds differ: digests %s and %s, archives equal: %v", d1, d2, string(b1) == string(b2))
	}
	f := files(t, b1)
	if !strings.Contains(string(f["manifest.json"]), `"RepoTags":["registry.k8s.io/pause:3.10.2"]`) {
		t.Errorf("manifest.json %s", f["manifest.json"])
	}

	o.Created = time.Unix(0, 0).UTC()
	img, err := BuildStatic(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(cfg.Config.Entrypoint, []string{"/pause"}) || cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("config %+v", cfg)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	want := []string{
		`0 pause 755 0:0 "" "" 1970-01-01T00:00:00Z "" "ELF pause"`,
		`5 usr/ 755 0:0 "" "" 1970-01-01T00:00:00Z "" ""`,
		`5 usr/bin/ 755 0:0 "" "" 1970-01-01T00:00:00Z "" ""`,
		`0 usr/bin/probe 755 0:0 "" "" 1970-01-01T00:00:00Z "" "ELF pause"`,
	}
	if diff := cmp.Diff(want, listing(t, data)); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}
}

func TestBuildStaticRefusesARelativePath(t *testing.T) {
	_, err := BuildStatic(StaticOptions{Files: map[string]string{"pause": "/dev/null"}})
	if err == nil || !strings.Contains(err.Error(), `"pause"`) {
		t.Errorf("BuildStatic with a relative path: %v, want an error naming it", err)
	}
}
