package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSchedulerInKernel(t *testing.T) {
	root := t.TempDir()
	mods := filepath.Join(root, "lib/modules/6.1.0-28-amd64")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(mods, 0o755))
	must(os.MkdirAll(filepath.Join(root, "sys/module/ip_vs_wlc"), 0o755))
	must(os.WriteFile(filepath.Join(mods, "modules.dep"),
		[]byte("kernel/net/netfilter/ipvs/ip_vs_rr.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko.xz\nkernel/net/netfilter/ipvs/ip_vs_mh.ko:\n"), 0o644))
	must(os.WriteFile(filepath.Join(mods, "modules.builtin"), []byte("kernel/net/netfilter/ipvs/ip_vs_sh.ko\n"), 0o644))
	tests := []struct {
		release, name string
		ok, known     bool
	}{
		{"6.1.0-28-amd64", "rr", true, true},    // installed, compressed
		{"6.1.0-28-amd64", "mh", true, true},    // installed
		{"6.1.0-28-amd64", "sh", true, true},    // built in
		{"6.1.0-28-amd64", "wlc", true, true},   // loaded
		{"6.1.0-28-amd64", "lblc", false, true}, // absent
		{"6.1.0-28-amd64", "r", false, true},    // a prefix of rr is not rr
		{"other", "lblc", false, false},         // no module tree: unknown
	}
	for _, tt := range tests {
		ok, known := schedulerInKernel(root, tt.release, tt.name)
		if ok != tt.ok || known != tt.known {
			t.Errorf("schedulerInKernel(%s, %s) = %v, %v; want %v, %v", tt.release, tt.name, ok, known, tt.ok, tt.known)
		}
	}
}
