package image

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// StaticOptions describe a one-layer image of static binaries, such as the sandbox (pause)
// image and the test workload image of the real node (test/node), which no registry serves
// here; optionally over the files of pinned Debian packages (the test images of upstream's e2e
// specs: busybox, curl, netcat).
type StaticOptions struct {
	// Files maps a path in the image (absolute) to the host file copied there, mode 0755.
	Files map[string]string
	// Symlinks maps a path in the image (absolute) to the target of the symbolic link made there.
	Symlinks map[string]string
	// Debs are verified .deb files (Deb.Verify) whose data is merged first, in this order,
	// without documentation (as in Build); Extract reads them (DpkgExtract).
	Debs    []string
	Extract func(deb string) (io.ReadCloser, error)
	// Entrypoint and Cmd are the image's; empty means none.
	Entrypoint, Cmd []string
	// Created dates the image and every file.
	Created time.Time
}

// BuildStatic assembles a one-layer image holding o.Debs' files, then o.Files and o.Symlinks
// (parent directories 0755); a path given twice with different content is an error. Like
// Build, the same inputs give the same digest.
func BuildStatic(o StaticOptions) (v1.Image, error) {
	if len(o.Files) == 0 && len(o.Debs) == 0 {
		return nil, fmt.Errorf("static image: no files")
	}
	t := NewTree(o.Created)
	for _, deb := range o.Debs {
		if err := addDeb(t, deb, o.Extract); err != nil {
			return nil, fmt.Errorf("static image: %w", err)
		}
	}
	names := make([]string, 0, len(o.Files))
	for name := range o.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !path.IsAbs(name) {
			return nil, fmt.Errorf("static image: file %q: want an absolute path in the image", name)
		}
		data, err := os.ReadFile(o.Files[name])
		if err != nil {
			return nil, fmt.Errorf("static image: file %s: %w", name, err)
		}
		if err := t.File(name, 0o755, data, o.Files[name]); err != nil {
			return nil, fmt.Errorf("static image: file %s: %w", name, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o.Symlinks)) {
		if !path.IsAbs(name) {
			return nil, fmt.Errorf("static image: symbolic link %q: want an absolute path in the image", name)
		}
		if err := t.Symlink(name, o.Symlinks[name], "kubevs-static-image"); err != nil {
			return nil, fmt.Errorf("static image: symbolic link %s: %w", name, err)
		}
	}
	ly, err := layer(t)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Config:       v1.Config{Entrypoint: o.Entrypoint, Cmd: o.Cmd, Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}},
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	if img, err = mutate.Append(img, mutate.Addendum{Layer: ly, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "kubevs-static-image"}}); err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: o.Created})
}
