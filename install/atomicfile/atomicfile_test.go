package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name     string
		existing string
		data     string
		mode     os.FileMode
		wantMode os.FileMode
	}{
		{name: "new file default mode", data: "hello", wantMode: 0o644},
		{name: "replace existing", existing: "old contents that are longer", data: "new", mode: 0o600, wantMode: 0o600},
		{name: "executable", data: "#!/bin/sh\n", mode: 0o755, wantMode: 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "10-net.conflist")
			if tt.existing != "" {
				if err := os.WriteFile(p, []byte(tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(p, []byte(tt.data), Options{Mode: tt.mode}); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.data, string(got)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tt.wantMode {
				t.Errorf("mode = %v, want %v", st.Mode().Perm(), tt.wantMode)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the final file", len(entries))
			}
		})
	}
}

func TestTempNamesAreNotLoadedByRuntimes(t *testing.T) {
	dir := t.TempDir()
	f, err := os.CreateTemp(dir, ".00-kubevs.conflist"+TempMarker+"*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	name := filepath.Base(f.Name())
	for _, ext := range []string{".conf", ".conflist", ".json"} {
		if strings.HasSuffix(name, ext) {
			t.Errorf("temporary name %q ends in %s: a CNI runtime would load it", name, ext)
		}
	}
	if !IsTemp(name) {
		t.Errorf("IsTemp(%q) = false", name)
	}
	if err := Cleanup(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Errorf("Cleanup left %s", name)
	}
}

func TestRemoveAbsentIsNotAnError(t *testing.T) {
	if err := Remove(filepath.Join(t.TempDir(), "absent")); err != nil {
		t.Errorf("Remove(absent) = %v", err)
	}
}

func TestCleanupForTouchesOnlyNamedFiles(t *testing.T) {
	dir := t.TempDir()
	keep := []string{".other.tmp-1", ".kubevs-ipam-not.tmp-1", "kubevs", ".kubevsx.tmp-1"}
	gone := []string{".kubevs.tmp-123", ".00-kubevs.conflist.tmp-9"}
	for _, n := range append(keep, gone...) {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := CleanupFor(dir, "kubevs", "00-kubevs.conflist"); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{".kubevs-ipam-not.tmp-1", ".kubevsx.tmp-1", ".other.tmp-1", "kubevs"}
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
}
