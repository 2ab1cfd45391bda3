package image

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The annotations of index.json that name the image: the OCI one, and containerd's, which
// `ctr images import` prefers.
const (
	AnnotationRefName       = "org.opencontainers.image.ref.name"
	AnnotationContainerName = "io.containerd.image.name"
)

// WriteArchive writes img, named tag, as one tar holding an OCI image layout (oci-layout,
// index.json, blobs/sha256/...) and a docker-archive manifest.json over the same blobs. The
// tar's entries are sorted and dated mtime, so the same image gives the same bytes.
func WriteArchive(w io.Writer, img v1.Image, tag string, mtime time.Time) error {
	dir, err := os.MkdirTemp("", "kubevs-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		AnnotationRefName:       tag,
		AnnotationContainerName: tag,
	})); err != nil {
		return fmt.Errorf("write image %s into the OCI layout: %w", tag, err)
	}
	m, err := dockerManifest(img, tag)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), m, 0o644); err != nil {
		return err
	}
	t := NewTree(mtime)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return t.Dir(rel, 0o755, "layout")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return t.File(rel, 0o644, data, "layout")
	})
	if err != nil {
		return fmt.Errorf("read OCI layout: %w", err)
	}
	data, err := t.Tar()
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// dockerManifest is the docker-archive manifest.json naming the layout's blobs.
func dockerManifest(img v1.Image, tag string) ([]byte, error) {
	blob := func(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
	cfg, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	d := tarball.Descriptor{Config: blob(cfg), RepoTags: []string{tag}}
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return nil, err
		}
		d.Layers = append(d.Layers, blob(h))
	}
	return json.Marshal(tarball.Manifest{d})
}
