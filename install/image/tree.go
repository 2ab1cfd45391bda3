package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// node is one entry of a Tree.
type node struct {
	typ    byte // tar.TypeDir, tar.TypeReg, tar.TypeSymlink
	mode   int64
	target string // symlink target
	data   []byte
	from   string // where it came from, for conflict messages
}

func (n *node) same(o *node) bool {
	return n.typ == o.typ && n.mode == o.mode && n.target == o.target && bytes.Equal(n.data, o.data)
}

// Tree is the content of one layer. Its tar (Tar) depends on nothing but the content: entries
// sorted by name, every mtime the Tree's, owner 0:0 without names, no access or change times,
// no extended attributes. Hard links are stored as copies (a sorted tar may name a link
// before its target).
type Tree struct {
	mtime time.Time
	nodes map[string]*node
}

// NewTree returns an empty Tree whose entries all carry mtime.
func NewTree(mtime time.Time) *Tree {
	return &Tree{mtime: mtime.UTC(), nodes: map[string]*node{}}
}

// clean turns "./usr/sbin/", "/usr/sbin" and "usr/sbin" into "usr/sbin"; the root is "".
func clean(name string) string {
	name = path.Clean("/" + name)
	return strings.TrimPrefix(name, "/")
}

// add puts n at name, creating missing parents (0755). A directory may be added again; a file
// or link only with the same content.
func (t *Tree) add(name string, n *node) error {
	name = clean(name)
	if name == "" {
		return nil
	}
	if old, ok := t.nodes[name]; ok {
		if old.typ == tar.TypeDir && n.typ == tar.TypeDir || old.same(n) {
			return nil
		}
		return fmt.Errorf("%s from %s conflicts with %s from %s", name, n.from, name, old.from)
	}
	if dir := path.Dir(name); dir != "." {
		if p, ok := t.nodes[dir]; ok && p.typ != tar.TypeDir {
			return fmt.Errorf("%s from %s: its parent %s from %s is not a directory", name, n.from, dir, p.from)
		}
		if err := t.add(dir, &node{typ: tar.TypeDir, mode: 0o755, from: n.from}); err != nil {
			return err
		}
	}
	t.nodes[name] = n
	return nil
}

// Dir adds a directory.
func (t *Tree) Dir(name string, mode int64, from string) error {
	return t.add(name, &node{typ: tar.TypeDir, mode: mode, from: from})
}

// File adds a regular file.
func (t *Tree) File(name string, mode int64, data []byte, from string) error {
	return t.add(name, &node{typ: tar.TypeReg, mode: mode, data: data, from: from})
}

// Symlink adds a symbolic link.
func (t *Tree) Symlink(name, target, from string) error {
	return t.add(name, &node{typ: tar.TypeSymlink, mode: 0o777, target: target, from: from})
}

// AddTar adds the entries of a tar stream (a .deb's data) for which keep returns true (keep
// sees cleaned names: "usr/sbin/iptables"). Only directories, regular files, symbolic links
// and hard links (copied) may appear.
func (t *Tree) AddTar(r io.Reader, from string, keep func(name string) bool) error {
	tr := tar.NewReader(r)
	links := map[string]string{} // hard link -> its target
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: read tar: %w", from, err)
		}
		name := clean(h.Name)
		if name == "" || !keep(name) {
			continue
		}
		mode := h.Mode & 0o7777
		switch h.Typeflag {
		case tar.TypeDir:
			err = t.Dir(name, mode, from)
		case tar.TypeReg:
			var data []byte
			if data, err = io.ReadAll(tr); err == nil {
				err = t.File(name, mode, data, from)
			}
		case tar.TypeSymlink:
			err = t.Symlink(name, h.Linkname, from)
		case tar.TypeLink:
			links[name] = clean(h.Linkname)
		default:
			err = fmt.Errorf("%s: %s: unsupported tar entry type %q", from, name, h.Typeflag)
		}
		if err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(links)) {
		target, ok := t.nodes[links[name]]
		if !ok || target.typ != tar.TypeReg {
			return fmt.Errorf("%s: hard link %s: no regular file %s", from, name, links[name])
		}
		if err := t.File(name, target.mode, target.data, from); err != nil {
			return err
		}
	}
	return nil
}

// Tar writes the tree as an uncompressed tar.
func (t *Tree) Tar() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(t.nodes)) {
		n := t.nodes[name]
		h := &tar.Header{Typeflag: n.typ, Name: name, Mode: n.mode, Linkname: n.target, ModTime: t.mtime}
		switch n.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeReg:
			h.Size = int64(len(n.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		if _, err := tw.Write(n.data); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
