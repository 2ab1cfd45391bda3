package image

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLock(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	got, err := ParseLock(strings.NewReader("# comment\n\niptables 1.8.9-2 amd64 " + sum + "\n  netbase\t6.4 all " + sum + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Deb{{"iptables", "1.8.9-2", "amd64", sum}, {"netbase", "6.4", "all", sum}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ lock, err string }{
		{"iptables 1.8.9-2 amd64", `line 1: want "package version arch sha256"`},
		{"iptables 1.8.9-2 amd64 abc", "line 1: iptables: sha256 \"abc\" is not 64 hex digits"},
		{"a 1 amd64 " + sum + "\n#\na 2 amd64 " + sum, "line 3: a is locked twice"},
	} {
		if _, err := ParseLock(strings.NewReader(tc.lock)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseLock(%q) = %v, want an error with %q", tc.lock, err, tc.err)
		}
	}
}

func TestTheLockFileParses(t *testing.T) {
	debs, err := ReadLock("debs.lock")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range debs {
		names = append(names, d.Package)
	}
	// iptables and the closure of its libraries (ldd of xtables-*-multi and the extensions).
	for _, need := range []string{"iptables", "libc6", "libxtables12", "libip4tc2", "libip6tc2", "libnftnl11", "libmnl0", "libnetfilter-conntrack3", "libnfnetlink0"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+need+" ") {
			t.Errorf("debs.lock lacks %s", need)
		}
	}
}

func TestVerifyRefusesAFileWhoseHashDiffers(t *testing.T) {
	dir := t.TempDir()
	data := []byte("!<arch>\n")
	sum := sha256.Sum256(data)
	d := Deb{Package: "libfoo", Version: "1:2.0-1", Arch: "amd64", SHA256: hex.EncodeToString(sum[:])}
	if d.FileName() != "libfoo_1%3a2.0-1_amd64.deb" {
		t.Errorf("FileName = %s", d.FileName())
	}
	if _, err := d.Verify(dir); err == nil || !strings.Contains(err.Error(), "libfoo=1:2.0-1") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, d.FileName()), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := d.Verify(dir); err != nil || p != filepath.Join(dir, d.FileName()) {
		t.Errorf("Verify = %s, %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, d.FileName()), append(data, 'x'), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Verify(dir); err == nil || !strings.Contains(err.Error(), "refusing it") {
		t.Errorf("a changed file: Verify = %v, want a refusal", err)
	}
}
