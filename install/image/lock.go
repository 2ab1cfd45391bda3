package image

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Deb is one pinned Debian package of the lock file.
type Deb struct {
	Package, Version, Arch string
	SHA256                 string // hex
}

// FileName is the name apt-get download gives the package's file (an epoch's colon is
// written %3a).
func (d Deb) FileName() string {
	return fmt.Sprintf("%s_%s_%s.deb", d.Package, strings.ReplaceAll(d.Version, ":", "%3a"), d.Arch)
}

func (d Deb) String() string { return d.Package + "=" + d.Version }

// ParseLock reads a lock file: one "package version arch sha256" per line; blank lines and
// lines starting with # are ignored.
func ParseLock(r io.Reader) ([]Deb, error) {
	var debs []Deb
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d: want \"package version arch sha256\", got %q", n, line)
		}
		d := Deb{Package: f[0], Version: f[1], Arch: f[2], SHA256: f[3]}
		if b, err := hex.DecodeString(d.SHA256); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("line %d: %s: sha256 %q is not 64 hex digits", n, d.Package, d.SHA256)
		}
		if seen[d.Package] {
			return nil, fmt.Errorf("line %d: %s is locked twice", n, d.Package)
		}
		seen[d.Package] = true
		debs = append(debs, d)
	}
	return debs, sc.Err()
}

// ReadLock reads the lock file at path.
func ReadLock(path string) ([]Deb, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	debs, err := ParseLock(f)
	if err != nil {
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	return debs, nil
}

// Verify checks that dir holds d's file with the locked sha256, and returns its path.
func (d Deb) Verify(dir string) (string, error) {
	path := filepath.Join(dir, d.FileName())
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("package %s: %w", d, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("package %s: read %s: %w", d, path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.SHA256 {
		return "", fmt.Errorf("package %s: %s has sha256 %s, the lock file says %s: refusing it", d, path, got, d.SHA256)
	}
	return path, nil
}
