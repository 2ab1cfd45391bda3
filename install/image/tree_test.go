package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// debTar is a .deb's data tar as dpkg-deb prints it: "./" names, owners, build-time mtimes.
func debTar(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h.Uid, h.Gid, h.Uname, h.Gname = 1000, 1000, "builder", "builder"
		h.ModTime = time.Date(2023, 1, 16, 12, 0, 0, 0, time.UTC)
		var data []byte
		if h.Typeflag == tar.TypeReg {
			data = []byte("content of " + h.Name)
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// listing prints a tar's entries, one a line, with every header field an image tool reads.
func listing(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out = append(out, fmt.Sprintf("%c %s %o %d:%d %q %q %s %q %q", h.Typeflag, h.Name, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname,
			h.ModTime.UTC().Format(time.RFC3339), h.Linkname, body))
	}
}

func TestTreeFromDebIsSortedNormalizedAndFiltered(t *testing.T) {
	deb := debTar(t,
		tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeDir, Name: "./usr/", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeDir, Name: "./usr/sbin/", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeReg, Name: "./usr/sbin/xtables-nft-multi", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeSymlink, Name: "./usr/sbin/iptables-nft", Linkname: "xtables-nft-multi", Mode: 0o777},
		tar.Header{Typeflag: tar.TypeLink, Name: "./usr/sbin/a-hardlink", Linkname: "./usr/sbin/xtables-nft-multi", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeReg, Name: "./usr/share/man/man8/iptables.8.gz", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeReg, Name: "./usr/share/doc/iptables/changelog.gz", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeReg, Name: "./usr/share/doc/iptables/copyright", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeReg, Name: "./etc/setuid", Mode: 0o4755},
	)
	tree := NewTree(time.Unix(1700000000, 0))
	if err := tree.AddTar(bytes.NewReader(deb), "iptables.deb", keepFromDeb); err != nil {
		t.Fatal(err)
	}
	if err := tree.Symlink("/usr/sbin/iptables", "/opt/kubevs/bin/kubevs-iptables-wrapper", "test"); err != nil {
		t.Fatal(err)
	}
	data, err := tree.Tar()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`5 etc/ 755 0:0 "" "" 2023-11-14T22:13:20Z "" ""`,
		`0 etc/setuid 4755 0:0 "" "" 2023-11-14T22:13:20Z "" "content of ./etc/setuid"`,
		`5 usr/ 755 0:0 "" "" 2023-11-14T22:13:20Z "" ""`,
		`5 usr/sbin/ 755 0:0 "" "" 2023-11-14T22:13:20Z "" ""`,
		`0 usr/sbin/a-hardlink 755 0:0 "" "" 2023-11-14T22:13:20Z "" "content of ./usr/sbin/xtables-nft-multi"`,
		`2 usr/sbin/iptables 777 0:0 "" "" 2023-11-14T22:13:20Z "/opt/kubevs/bin/kubevs-iptables-wrapper" ""`,
		`2 usr/sbin/iptables-nft 777 0:0 "" "" 2023-11-14T22:13:20Z "xtables-nft-multi" ""`,
		`0 usr/sbin/xtables-nft-multi 755 0:0 "" "" 2023-11-14T22:13:20Z "" "content of ./usr/sbin/xtables-nft-multi"`,
		`5 usr/share/ 755 0:0 "" "" 2023-11-14T22:13:20Z "" ""`,
		`5 usr/share/doc/ 755 0:0 "" "" 2023-11-14T22:13:20Z "" ""`,
		`5 usr/share/doc/iptables/ 755 0:0 "" "" 2023-11-14T22:13:20Z "" ""`,
		`0 usr/share/doc/iptables/copyright 644 0:0 "" "" 2023-11-14T22:13:20Z "" "content of ./usr/share/doc/iptables/copyright"`,
	}
	if diff := cmp.Diff(want, listing(t, data)); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}
}

func TestTreeTarDoesNotDependOnInsertionOrder(t *testing.T) {
	build := func(names ...string) []byte {
		tree := NewTree(time.Unix(0, 0))
		for _, n := range names {
			if err := tree.File(n, 0o644, []byte(n), "test"); err != nil {
				t.Fatal(err)
			}
		}
		data, err := tree.Tar()
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a := build("b/c", "a", "b/a", "lib-x/y", "lib/x")
	b := build("lib/x", "lib-x/y", "b/a", "a", "b/c")
	if !bytes.Equal(a, b) {
		t.Errorf("two insertion orders give two tars:\n%s\n%s", listing(t, a), listing(t, b))
	}
}

func TestTreeConflicts(t *testing.T) {
	tree := NewTree(time.Unix(0, 0))
	steps := []struct {
		do  func() error
		err string
	}{
		{func() error { return tree.File("usr/lib/libc.so.6", 0o755, []byte("libc"), "libc6.deb") }, ""},
		{func() error { return tree.File("usr/lib/libc.so.6", 0o755, []byte("libc"), "other.deb") }, ""}, // the same file twice
		{func() error { return tree.Dir("usr/lib", 0o700, "other.deb") }, ""},                            // a directory again
		{func() error { return tree.File("usr/lib/libc.so.6", 0o755, []byte("evil"), "evil.deb") }, "usr/lib/libc.so.6 from evil.deb conflicts with usr/lib/libc.so.6 from libc6.deb"},
		{func() error { return tree.Symlink("usr/lib/libc.so.6", "x", "evil.deb") }, "conflicts"},
		{func() error { return tree.File("usr/lib/libc.so.6/x", 0o644, nil, "evil.deb") }, "its parent usr/lib/libc.so.6 from libc6.deb is not a directory"},
	}
	for i, s := range steps {
		err := s.do()
		if s.err == "" && err != nil || s.err != "" && (err == nil || !strings.Contains(err.Error(), s.err)) {
			t.Errorf("step %d: %v, want %q", i, err, s.err)
		}
	}
}

func TestAddTarRefusesDevicesAndDanglingHardLinks(t *testing.T) {
	for _, tc := range []struct {
		h   tar.Header
		err string
	}{
		{tar.Header{Typeflag: tar.TypeChar, Name: "./dev/null", Mode: 0o666}, "unsupported tar entry type"},
		{tar.Header{Typeflag: tar.TypeLink, Name: "./a", Linkname: "./nowhere"}, "hard link a: no regular file nowhere"},
	} {
		err := NewTree(time.Unix(0, 0)).AddTar(bytes.NewReader(debTar(t, tc.h)), "x.deb", keepFromDeb)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.h.Name, err, tc.err)
		}
	}
}
