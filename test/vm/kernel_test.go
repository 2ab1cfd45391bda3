package vm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDepends(t *testing.T) {
	tests := []struct {
		name, out, want string
		wantErr         bool
	}{
		{name: "bookworm", out: "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n", want: "linux-image-6.1.0-56-amd64"},
		{name: "virtual skipped", out: "linux-image-amd64\n  Depends: <linux-image-x>\n  Depends: linux-image-6.12.9-amd64\n", want: "linux-image-6.12.9-amd64"},
		{name: "nothing", out: "linux-image-amd64\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDepends(tt.out)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseDepends = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestField(t *testing.T) {
	show := "Package: linux-image-6.1.0-56-amd64\nSource: linux-signed-amd64 (6.1.192+2)\nVersion: 6.1.192-2\n\nPackage: other\nVersion: 1\n"
	if got := field(show, "Version"); got != "6.1.192-2" {
		t.Errorf("field Version = %q", got)
	}
	if got := field(show, "Missing"); got != "" {
		t.Errorf("field Missing = %q, want empty", got)
	}
}

func TestKernelRelease(t *testing.T) {
	if got := (Kernel{Package: "linux-image-6.1.0-56-amd64"}).Release(); got != "6.1.0-56-amd64" {
		t.Errorf("Release = %q", got)
	}
}

func TestStampRoundTripAndCachedKernels(t *testing.T) {
	root := t.TempDir()
	stamps := []stamp{
		{Kernel: Kernel{Package: "linux-image-6.1.0-55-amd64", Version: "6.1.190-1"}, Recipe: "r1"},
		{Kernel: Kernel{Package: "linux-image-6.1.0-56-amd64", Version: "6.1.192-2"}, Recipe: "r2"},
	}
	for _, s := range stamps {
		if got := parseStamp(s.String()); got != s {
			t.Errorf("parseStamp(String()) = %+v, want %+v", got, s)
		}
		dir := filepath.Join(root, s.Kernel.Release())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, stampFile), []byte(s.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, ".build-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := []Kernel{stamps[0].Kernel, stamps[1].Kernel}
	if diff := cmp.Diff(want, cachedKernels(root)); diff != "" {
		t.Errorf("cachedKernels (-want +got):\n%s", diff)
	}
}

func TestListsFingerprint(t *testing.T) {
	dir := t.TempDir()
	if got := listsFingerprint(filepath.Join(dir, "missing")); got != "none" {
		t.Errorf("fingerprint of a missing folder = %q, want none", got)
	}
	empty := listsFingerprint(dir)
	if err := os.WriteFile(filepath.Join(dir, "Packages"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	one := listsFingerprint(dir)
	if err := os.WriteFile(filepath.Join(dir, "Packages"), []byte("ab"), 0o644); err != nil {
		t.Fatal(err)
	}
	two := listsFingerprint(dir)
	if empty == one || one == two || two != listsFingerprint(dir) {
		t.Errorf("fingerprints empty=%s one=%s two=%s: want all different and stable", empty, one, two)
	}
}

// TestResolveCachedUsesTheRememberedAnswer: with unchanged apt lists, no apt-cache runs (the
// remembered package is one apt does not know, so asking apt would fail).
func TestResolveCachedUsesTheRememberedAnswer(t *testing.T) {
	t.Setenv("KUBEVS_VM_KERNEL", "")
	root := t.TempDir()
	want := Kernel{Package: "linux-image-0.0.0-0-test", Version: "0.0-0"}
	body := "lists=" + listsFingerprint(aptLists) + "/\n" + stamp{Kernel: want}.String()
	if err := os.WriteFile(filepath.Join(root, "resolved"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := resolveCached(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("resolveCached = %+v, want %+v", got, want)
	}
}

func TestPruneOthers(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"6.1.0-55-amd64", "6.1.0-56-amd64"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, d, stampFile), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "resolved"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pruneOthers(t.Context(), root, "6.1.0-56-amd64")
	var left []string
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if diff := cmp.Diff([]string{"6.1.0-56-amd64", "resolved"}, left); diff != "" {
		t.Errorf("cache after prune (-want +got):\n%s", diff)
	}
}
