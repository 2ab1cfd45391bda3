package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// realDeb builds a small .deb with dpkg-deb --build: a binary, a symlink, a man page and a
// copyright file.
func realDeb(t *testing.T) (dir string, d Deb) {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed (the image build needs it: a Debian machine)")
	}
	root := filepath.Join(t.TempDir(), "pkg")
	for name, data := range map[string]string{
		"DEBIAN/control":                      "Package: libdemo1\nVersion: 1:1.0-1\nArchitecture: amd64\nMaintainer: kubevs <k@example.org>\nDescription: demo\n",
		"usr/sbin/demo-multi":                 "#!demo\n",
		"usr/share/man/man8/demo.8.gz":        "man",
		"usr/share/doc/libdemo1/copyright":    "GPL",
		"usr/share/doc/libdemo1/changelog.gz": "log",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("demo-multi", filepath.Join(root, "usr/sbin/demo")); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	d = Deb{Package: "libdemo1", Version: "1:1.0-1", Arch: "amd64"}
	out := filepath.Join(dir, d.FileName())
	if b, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, out).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	d.SHA256 = hex.EncodeToString(sum[:])
	return dir, d
}

func TestDpkgExtractIntoATree(t *testing.T) {
	dir, d := realDeb(t)
	path, err := d.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := DpkgExtract(path)
	if err != nil {
		t.Fatal(err)
	}
	tree := NewTree(time.Unix(0, 0))
	if err := tree.AddTar(rc, d.FileName(), keepFromDeb); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := tree.Tar()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range listing(t, data) {
		got = append(got, strings.Join(strings.Fields(l)[:2], " "))
	}
	want := []string{"5 usr/", "5 usr/sbin/", "2 usr/sbin/demo", "0 usr/sbin/demo-multi", "5 usr/share/", "5 usr/share/doc/",
		"5 usr/share/doc/libdemo1/", "0 usr/share/doc/libdemo1/copyright"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree of the .deb (-want +got):\n%s", diff)
	}
}

func TestDpkgExtractReportsABrokenDeb(t *testing.T) {
	dir, _ := realDeb(t)
	bad := filepath.Join(dir, "bad.deb")
	if err := os.WriteFile(bad, []byte("not a deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := DpkgExtract(bad)
	if err == nil {
		err = NewTree(time.Unix(0, 0)).AddTar(rc, "bad.deb", keepFromDeb)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		t.Errorf("a broken .deb extracts without an error")
	}
}

func TestCommandRefusesAPackageNotAsLocked(t *testing.T) {
	dir, d := realDeb(t)
	lock := filepath.Join(t.TempDir(), "debs.lock")
	d.SHA256 = strings.Repeat("0", 64)
	if err := os.WriteFile(lock, []byte(fmt.Sprintf("%s %s %s %s\n", d.Package, d.Version, d.Arch, d.SHA256)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	c := Command{Lock: lock, DebDir: dir, BinDir: t.TempDir(), Out: out, Tag: "kubevs.io/kubevs:test"}
	if _, err := c.Run(""); err == nil || !strings.Contains(err.Error(), "refusing it") {
		t.Errorf("Run = %v, want a refusal of the package", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an archive was written: %v", err)
	}
	if _, err := c.Run("yesterday"); err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("Run(SOURCE_DATE_EPOCH=yesterday) = %v", err)
	}
}
