package xtables

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sbin builds an image's /usr/sbin: the tools linked to the wrapper.
func sbin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range Tools {
		if err := os.Symlink("/opt/kubevs/bin/"+Name, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func links(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = target
	}
	return got
}

func TestMainRelinksToTheDetectedBackendAndExecsIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  map[string]string
		want Mode
	}{
		{"legacy", map[string]string{"xtables-legacy-multi iptables-save": canaryOnly}, Legacy},
		{"nft", map[string]string{"xtables-nft-multi ip6tables-save": kubeletMangle, "xtables-legacy-multi iptables-save": threeRules}, NFT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sbin(t)
			k := &fakeKernel{out: tc.out}
			var path string
			var argv []string
			var stderr bytes.Buffer
			w := Wrapper{Dir: dir, Run: k.run, Stderr: &stderr, Exec: func(p string, a, _ []string) error {
				path, argv = p, a
				return nil // a real exec does not return
			}}
			w.Main(context.Background(), []string{"/usr/sbin/iptables-restore", "-w", "--noflush"})
			if want := filepath.Join(dir, tc.want.Multi()); path != want {
				t.Errorf("exec %s, want %s", path, want)
			}
			if diff := cmp.Diff([]string{"iptables-restore", "-w", "--noflush"}, argv); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
			want := map[string]string{}
			for _, tool := range Tools {
				want[tool] = tc.want.Multi()
			}
			if diff := cmp.Diff(want, links(t, dir)); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
			// The proxier learns the backend from `iptables --version`'s combined output: the
			// wrapper must not print "nf_tables" there.
			if stderr.Len() != 0 {
				t.Errorf("stderr names a backend: %q", stderr.String())
			}
		})
	}
}

func TestMainStillExecsWhenTheImageIsReadOnly(t *testing.T) {
	// A directory no one (root included) can link into: a path under a regular file.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "sbin")
	var path string
	var stderr bytes.Buffer
	w := Wrapper{Dir: dir, Run: (&fakeKernel{}).run, Stderr: &stderr, Exec: func(p string, _, _ []string) error { path = p; return nil }}
	w.Main(context.Background(), []string{"iptables", "--version"})
	if path != filepath.Join(dir, NFT.Multi()) || !strings.Contains(stderr.String(), "warning: link") || strings.Contains(stderr.String(), "nf_tables") {
		t.Errorf("exec %q, stderr %q: want the nft binary and a warning", path, stderr.String())
	}
}

func TestMainUsage(t *testing.T) {
	dir := sbin(t)
	for _, argv := range [][]string{{"/bin/ls"}, {Name}, {Name, "install"}} {
		var stderr bytes.Buffer
		w := Wrapper{Dir: dir, Run: (&fakeKernel{}).run, Stderr: &stderr, Exec: func(string, []string, []string) error {
			t.Errorf("%q execs", argv)
			return nil
		}}
		if code := w.Main(context.Background(), argv); code != 2 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a usage", argv, code, stderr.String())
		}
	}
	var stdout bytes.Buffer
	w := Wrapper{Dir: dir, Run: (&fakeKernel{out: map[string]string{}}).run, Stdout: &stdout}
	if code := w.Main(context.Background(), []string{"/opt/kubevs/bin/" + Name, "detect"}); code != 0 || !strings.HasPrefix(stdout.String(), "xtables-nft-multi: no kubelet chain") {
		t.Errorf("detect: exit %d, %q", code, stdout.String())
	}
	if got := links(t, dir)["iptables"]; got != "/opt/kubevs/bin/"+Name {
		t.Errorf("detect changed the links: iptables -> %s", got)
	}
}
