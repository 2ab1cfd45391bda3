package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubevs/kubevs/test/bed"
)

// TestPreloadCacheDir: a cached cluster is told apart by size, endpoints, format and
// control plane; a complete one is used as it is, without starting anything.
func TestPreloadCacheDir(t *testing.T) {
	root := t.TempDir()
	p := Preload{Services: 200, Endpoints: 10, Cache: root}
	a := []string{"/cache/kube-v1.36.3", "/cache/etcd-v3.6.16"}
	dir := p.cacheDir(a)
	for name, other := range map[string]string{
		"services":      Preload{Services: 201, Endpoints: 10, Cache: root}.cacheDir(a),
		"endpoints":     Preload{Services: 200, Endpoints: 11, Cache: root}.cacheDir(a),
		"control plane": p.cacheDir([]string{"/cache/kube-v1.37.0", "/cache/etcd-v3.6.16"}),
	} {
		if other == dir {
			t.Errorf("another %s, the same dir %s", name, dir)
		}
	}
	if filepath.Dir(dir) != root {
		t.Errorf("dir %s is not in the cache %s", dir, root)
	}
	if err := os.MkdirAll(filepath.Join(dir, "etcd"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// No binaries: anything but the cached dir would fail to start.
	got, err := p.seed(context.Background(), bed.Config{ControlPlaneBin: a, LogDir: t.TempDir()})
	if err != nil || got != filepath.Join(dir, "etcd") {
		t.Errorf("seed = %q, %v; want the cached %s", got, err, filepath.Join(dir, "etcd"))
	}
	if got, err := (Preload{Services: 200, Endpoints: 10}).seed(context.Background(), bed.Config{}); got != "" || err != nil {
		t.Errorf("seed without a cache = %q, %v; want none", got, err)
	}
}
