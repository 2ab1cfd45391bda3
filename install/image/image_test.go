package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kubevs/kubevs/install/manifests"
	"github.com/kubevs/kubevs/install/xtables"
)

// fakeOptions: fake binaries, and two packages whose data tars the fake Extract returns.
func fakeOptions(t *testing.T) Options {
	t.Helper()
	bin := t.TempDir()
	for _, b := range Binaries {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("ELF "+b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	debs := map[string][]byte{
		"/cache/iptables_1.8.9-2_amd64.deb": debTar(t,
			tar.Header{Typeflag: tar.TypeReg, Name: "./usr/sbin/xtables-nft-multi", Mode: 0o755},
			tar.Header{Typeflag: tar.TypeSymlink, Name: "./usr/sbin/iptables-nft-save", Linkname: "xtables-nft-multi"}),
		"/cache/libc6_2.36-9_amd64.deb": debTar(t,
			tar.Header{Typeflag: tar.TypeReg, Name: "./lib/x86_64-linux-gnu/libc.so.6", Mode: 0o755}),
	}
	return Options{
		Created: time.Unix(0, 0).UTC(),
		Debs:    []string{"/cache/iptables_1.8.9-2_amd64.deb", "/cache/libc6_2.36-9_amd64.deb"},
		BinDir:  bin,
		Extract: func(deb string) (io.ReadCloser, error) {
			data, ok := debs[deb]
			if !ok {
				return nil, errors.New("no such package")
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		},
	}
}

func archive(t *testing.T, o Options) (v1.Image, []byte) {
	t.Helper()
	img, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, img, manifests.Image, o.Created); err != nil {
		t.Fatal(err)
	}
	return img, buf.Bytes()
}

func TestBuildTwiceGivesTheSameBytes(t *testing.T) {
	o := fakeOptions(t)
	img1, a1 := archive(t, o)
	o.BinDir = t.TempDir() // the same binaries elsewhere: no build path in the image
	for _, b := range Binaries {
		if err := os.WriteFile(filepath.Join(o.BinDir, b), []byte("ELF "+b), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	img2, a2 := archive(t, o)
	d1, _ := img1.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 || !bytes.Equal(a1, a2) {
		t.Errorf("two builds: digests %s and %s, archives equal: %v", d1, d2, bytes.Equal(a1, a2))
	}
	o.Created = time.Unix(1, 0)
	if img3, _ := archive(t, o); func() bool { d3, _ := img3.Digest(); return d3 == d1 }() {
		t.Error("another SOURCE_DATE_EPOCH gives the same digest: the date is not in the image")
	}
}

// files reads a tar into name -> content.
func files(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

func TestArchiveIsAnOCILayoutAndADockerArchive(t *testing.T) {
	img, data := archive(t, fakeOptions(t))
	f := files(t, data)
	if got := string(f["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` && !strings.Contains(got, `"imageLayoutVersion": "1.0.0"`) {
		t.Errorf("oci-layout %q", got)
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(f["index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	digest, _ := img.Digest()
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests", len(index.Manifests))
	}
	m := index.Manifests[0]
	want := map[string]string{AnnotationRefName: "kubevs.io/kubevs:" + manifests.Version, AnnotationContainerName: manifests.Image}
	if m.Digest != digest || string(m.MediaType) != "application/vnd.oci.image.manifest.v1+json" || !cmp.Equal(want, m.Annotations) {
		t.Errorf("index.json manifest %+v, want digest %s, OCI manifest type, annotations %v", m, digest, want)
	}
	var docker tarball.Manifest
	if err := json.Unmarshal(f["manifest.json"], &docker); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(docker) != 1 || !cmp.Equal(docker[0].RepoTags, []string{manifests.Image}) || len(docker[0].Layers) != 2 {
		t.Fatalf("manifest.json %+v", docker)
	}
	// Every path manifest.json names is a blob of the layout.
	for _, p := range append([]string{docker[0].Config}, docker[0].Layers...) {
		if _, ok := f[p]; !ok {
			t.Errorf("manifest.json names %s, not in the archive", p)
		}
	}
	if _, ok := f["blobs/sha256/"+digest.Hex]; !ok {
		t.Errorf("no blob for the manifest %s", digest)
	}
}

func TestImageContent(t *testing.T) {
	img, _ := archive(t, fakeOptions(t))
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || !cfg.Created.Equal(time.Unix(0, 0)) || !strings.HasPrefix(cfg.Config.Env[0], "PATH="+BinDir+":") {
		t.Errorf("config %+v", cfg)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	var got [][]string
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		var names []string
		for _, line := range listing(t, data) {
			names = append(names, strings.Join(strings.Fields(line)[:2], " "))
		}
		got = append(got, names)
	}
	wantKubevs := []string{"5 opt/", "5 opt/kubevs/", "5 opt/kubevs/bin/"}
	for _, b := range slices.Sorted(slices.Values(Binaries)) {
		wantKubevs = append(wantKubevs, "0 opt/kubevs/bin/"+b)
	}
	wantKubevs = append(wantKubevs, "5 usr/", "5 usr/sbin/")
	for _, tool := range slices.Sorted(slices.Values(xtables.Tools)) {
		wantKubevs = append(wantKubevs, "2 usr/sbin/"+tool)
	}
	want := [][]string{
		{"5 lib/", "5 lib/x86_64-linux-gnu/", "0 lib/x86_64-linux-gnu/libc.so.6", "5 run/", "5 tmp/", "5 usr/", "5 usr/sbin/",
			"2 usr/sbin/iptables-nft-save", "0 usr/sbin/xtables-nft-multi", "5 var/", "5 var/lib/", "5 var/lib/kubevs/"},
		wantKubevs,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layers (-want +got):\n%s", diff)
	}
}

func TestBuildNamesAMissingBinary(t *testing.T) {
	o := fakeOptions(t)
	if err := os.Remove(filepath.Join(o.BinDir, xtables.Name)); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "binary "+xtables.Name) {
		t.Errorf("Build = %v, want an error naming %s", err, xtables.Name)
	}
}
