package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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
	got, cfg := staticLayer(t, o)
	if !cmp.Equal(cfg.Config.Entrypoint, []string{"/pause"}) || cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("config %+v", cfg)
	}
	want := []string{
		`0 pause 755 0:0 "" "" 1970-01-01T00:00:00Z "" "ELF pause"`,
		`5 usr/ 755 0:0 "" "" 1970-01-01T00:00:00Z "" ""`,
		`5 usr/bin/ 755 0:0 "" "" 1970-01-01T00:00:00Z "" ""`,
		`0 usr/bin/probe 755 0:0 "" "" 1970-01-01T00:00:00Z "" "ELF pause"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}
}

func TestBuildStaticRefusesARelativePath(t *testing.T) {
	_, err := BuildStatic(StaticOptions{Files: map[string]string{"pause": "/dev/null"}})
	if err == nil || !strings.Contains(err.Error(), `"pause"`) {
		t.Errorf("BuildStatic with a relative path: %v, want an error naming it", err)
	}
}

// staticLayer returns the listing of img's only layer.
func staticLayer(t *testing.T, o StaticOptions) ([]string, *v1.ConfigFile) {
	t.Helper()
	img, err := BuildStatic(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
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
	return listing(t, data), cfg
}

// The test images of upstream's e2e specs: Debian packages (without their documentation),
// a static binary, the links a package's maintainer scripts would make, and a Cmd.
func TestBuildStaticWithPackagesAndLinks(t *testing.T) {
	dir := t.TempDir()
	agnhost := filepath.Join(dir, "agnhost")
	if err := os.WriteFile(agnhost, []byte("ELF agnhost"), 0o700); err != nil {
		t.Fatal(err)
	}
	debs := map[string][]byte{
		"/cache/busybox-static.deb": debTar(t,
			tar.Header{Typeflag: tar.TypeDir, Name: "./bin/", Mode: 0o755},
			tar.Header{Typeflag: tar.TypeReg, Name: "./bin/busybox", Mode: 0o755},
			tar.Header{Typeflag: tar.TypeReg, Name: "./usr/share/man/man1/busybox.1.gz", Mode: 0o644}),
		"/cache/netcat-openbsd.deb": debTar(t,
			tar.Header{Typeflag: tar.TypeReg, Name: "./bin/nc.openbsd", Mode: 0o755}),
	}
	o := StaticOptions{
		Created:    time.Unix(0, 0).UTC(),
		Files:      map[string]string{"/agnhost": agnhost},
		Symlinks:   map[string]string{"/bin/sh": "busybox", "/bin/nc": "nc.openbsd", "/agnhost-2": "agnhost"},
		Debs:       []string{"/cache/busybox-static.deb", "/cache/netcat-openbsd.deb"},
		Extract:    func(deb string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(debs[deb])), nil },
		Entrypoint: []string{"/agnhost"},
		Cmd:        []string{"pause"},
	}
	got, cfg := staticLayer(t, o)
	want := []string{
		`0 agnhost 755 0:0 "" "" 1970-01-01T00:00:00Z "" "ELF agnhost"`,
		`2 agnhost-2 777 0:0 "" "" 1970-01-01T00:00:00Z "agnhost" ""`,
		`5 bin/ 755 0:0 "" "" 1970-01-01T00:00:00Z "" ""`,
		`0 bin/busybox 755 0:0 "" "" 1970-01-01T00:00:00Z "" "content of ./bin/busybox"`,
		`2 bin/nc 777 0:0 "" "" 1970-01-01T00:00:00Z "nc.openbsd" ""`,
		`0 bin/nc.openbsd 755 0:0 "" "" 1970-01-01T00:00:00Z "" "content of ./bin/nc.openbsd"`,
		`2 bin/sh 777 0:0 "" "" 1970-01-01T00:00:00Z "busybox" ""`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}
	if !cmp.Equal(cfg.Config.Entrypoint, []string{"/agnhost"}) || !cmp.Equal(cfg.Config.Cmd, []string{"pause"}) {
		t.Errorf("entrypoint %q cmd %q, want [/agnhost] [pause]", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}

	// A package alone is an image (busybox); a link over a packaged file is refused.
	if _, err := BuildStatic(StaticOptions{Debs: o.Debs[:1], Extract: o.Extract}); err != nil {
		t.Errorf("an image of one package: %v", err)
	}
	o.Symlinks = map[string]string{"/bin/busybox": "nc.openbsd"}
	if _, err := BuildStatic(o); err == nil || !strings.Contains(err.Error(), "bin/busybox") {
		t.Errorf("a link over a packaged file: %v, want an error naming it", err)
	}
}
