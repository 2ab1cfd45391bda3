// Package image builds kubevs's container image without a container engine: the four static
// binaries and kubevs-iptables-wrapper in /opt/kubevs/bin, and iptables 1.8 with both
// backends from pinned Debian packages, in two layers assembled with go-containerregistry.
//
// The output is one tar that is both an OCI image layout (index.json names the image in
// org.opencontainers.image.ref.name and io.containerd.image.name) and a docker-archive
// (manifest.json with RepoTags pointing at the same blobs), the shape `docker save` writes
// since Docker 25: `ctr images import`, `kind load image-archive` (ctr import inside the
// node), `podman load` and `docker load` all read it.
//
// Reproducible: every tar (layers and archive) is sorted, owned 0:0, dated SOURCE_DATE_EPOCH
// and free of build paths, and the image's creation time is that date, so the same inputs
// give the same bytes.
package image

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kubevs/kubevs/install/manifests"
	"github.com/kubevs/kubevs/install/xtables"
)

// BinDir is where the image holds kubevs's binaries (kubevs-install's default source).
const BinDir = "/opt/kubevs/bin"

// SbinDir is where Debian's iptables installs its tools, and where the wrapper relinks them.
const SbinDir = "/usr/sbin"

// Binaries are the files BinDir must hold.
var Binaries = []string{"kubevs", "kubevs-install", "kubevs-ipam", "kubevs-proxier", xtables.Name}

// Options say what goes into the image.
type Options struct {
	Created time.Time // every mtime and the image's creation time (SOURCE_DATE_EPOCH)
	Debs    []string  // verified .deb files (Deb.Verify), in the order their files are merged
	BinDir  string    // the directory holding Binaries, built CGO_ENABLED=0
	// Extract returns the data tar of a .deb (dpkg-deb --fsys-tarfile).
	Extract func(deb string) (io.ReadCloser, error)
}

// keepFromDeb drops documentation but the copyright files (the licences travel with the
// binaries).
func keepFromDeb(name string) bool {
	for _, p := range []string{"usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/bug"} {
		if name == p || strings.HasPrefix(name, p+"/") {
			return false
		}
	}
	if rest, ok := strings.CutPrefix(name, "usr/share/doc/"); ok {
		parts := strings.Split(rest, "/")
		return len(parts) == 1 || len(parts) == 2 && parts[1] == "copyright"
	}
	return true
}

// userland is the layer of Debian packages.
func userland(o Options) (*Tree, error) {
	t := NewTree(o.Created)
	for _, deb := range o.Debs {
		if err := addDeb(t, deb, o.Extract); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct {
		name string
		mode int64
	}{{"tmp", 0o1777}, {"run", 0o755}, {"var/lib/kubevs", 0o755}} {
		if err := t.Dir(d.name, d.mode, "kubevs-image"); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// addDeb merges the data of the package deb, read by extract, into t (keepFromDeb).
func addDeb(t *Tree, deb string, extract func(string) (io.ReadCloser, error)) error {
	if extract == nil {
		return fmt.Errorf("extract %s: no extractor", filepath.Base(deb))
	}
	rc, err := extract(deb)
	if err != nil {
		return fmt.Errorf("extract %s: %w", filepath.Base(deb), err)
	}
	err = t.AddTar(rc, filepath.Base(deb), keepFromDeb)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("extract %s: %w", filepath.Base(deb), cerr)
	}
	return err
}

// kubevs is the layer of kubevs's binaries, and the iptables tools linked to the wrapper.
func kubevs(o Options) (*Tree, error) {
	t := NewTree(o.Created)
	for _, b := range Binaries {
		data, err := os.ReadFile(filepath.Join(o.BinDir, b))
		if err != nil {
			return nil, fmt.Errorf("binary %s: %w", b, err)
		}
		if err := t.File(path.Join(BinDir, b), 0o755, data, b); err != nil {
			return nil, err
		}
	}
	for _, tool := range xtables.Tools {
		if err := t.Symlink(path.Join(SbinDir, tool), path.Join(BinDir, xtables.Name), "kubevs-image"); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func layer(t *Tree) (v1.Layer, error) {
	data, err := t.Tar()
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(string(data))), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// Build assembles the image.
func Build(o Options) (v1.Image, error) {
	debs, err := userland(o)
	if err != nil {
		return nil, fmt.Errorf("userland layer: %w", err)
	}
	bins, err := kubevs(o)
	if err != nil {
		return nil, fmt.Errorf("kubevs layer: %w", err)
	}
	var adds []mutate.Addendum
	for _, l := range []struct {
		tree *Tree
		what string
	}{{debs, debNames(o.Debs)}, {bins, "kubevs " + manifests.Version + ": " + strings.Join(Binaries, " ")}} {
		ly, err := layer(l.tree)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: ly, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "kubevs-image", Comment: l.what}})
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Config: v1.Config{
			Env: []string{"PATH=" + BinDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Labels: map[string]string{
				"org.opencontainers.image.title":   "kubevs",
				"org.opencontainers.image.version": manifests.Version,
			},
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: o.Created})
}

func debNames(debs []string) string {
	names := make([]string, len(debs))
	for i, d := range debs {
		names[i] = strings.TrimSuffix(filepath.Base(d), ".deb")
	}
	return "Debian packages: " + strings.Join(names, " ")
}
