// Package atomicfile writes files so that a reader never sees a half-written one: the data
// goes to a temporary file in the same directory, which is fsync'd, given its final mode and
// owner, renamed over the final name, and followed by an fsync of the directory.
//
// The temporary name starts with '.' and ends with ".tmp-<random>", so neither a CNI runtime
// (which loads *.conf, *.conflist and *.json) nor a shell glob picks it up, and a crash leaves
// at worst a stray temporary file, never a torn final file.
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// TempMarker is part of every temporary name this package creates; Cleanup removes such files.
const TempMarker = ".tmp-"

// Options say how the final file must look. The zero value means mode 0644, owner unchanged.
type Options struct {
	// Mode is the permission of the final file (0644 when zero).
	Mode os.FileMode
	// Chown, when true, sets the owner to UID:GID before the rename.
	Chown    bool
	UID, GID int
}

// WriteFile atomically replaces path with data. See the package comment.
func WriteFile(path string, data []byte, opts Options) error {
	return Write(path, bytes.NewReader(data), opts)
}

// Write atomically replaces path with everything read from r.
func Write(path string, r io.Reader, opts Options) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := opts.Mode
	if mode == 0 {
		mode = 0o644
	}
	f, err := os.CreateTemp(dir, "."+base+TempMarker+"*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, r); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if opts.Chown {
		if err = f.Chown(opts.UID, opts.GID); err != nil {
			return fmt.Errorf("chown %s: %w", tmp, err)
		}
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs the directory dir, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// Remove removes path (absent is not an error) and fsyncs its directory.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// IsTemp reports whether name (a base name) is a temporary file of this package.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, TempMarker)
}

// CleanupFor removes the temporary files a crashed writer of dir/name left, for each name.
// It touches nothing else in dir, so it is safe in directories other programs write to.
func CleanupFor(dir string, names ...string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", dir, err)
	}
	for _, e := range entries {
		for _, n := range names {
			if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "."+n+TempMarker) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
					return fmt.Errorf("remove stale temporary file: %w", err)
				}
			}
		}
	}
	return nil
}

// Cleanup removes the temporary files a crashed writer left in dir.
func Cleanup(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && IsTemp(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("remove stale temporary file: %w", err)
			}
		}
	}
	return nil
}
