package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/conflist"
	"github.com/kubevs/kubevs/internal/testenv"
)

// flannelConflist is a flannel-style network already on the node.
const flannelConflist = `{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}}]}
`

// testOptions returns options for a fresh node under a temporary root, with binaries and a
// service account to install from.
func testOptions(t *testing.T, mode string) Options {
	t.Helper()
	testenv.RequireRoot(t) // binaries are chowned to root and bin dir ownership is checked
	base := t.TempDir()
	root := filepath.Join(base, "node")
	src := filepath.Join(base, "image", "bin")
	sa := filepath.Join(base, "sa")
	for _, d := range []string{root, src, sa} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range DefaultBinaries {
		if err := os.WriteFile(filepath.Join(src, b), []byte("#!/bin/sh\necho "+b+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(sa, "token"), "token-1\n")
	mustWrite(t, filepath.Join(sa, "ca.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	// The reference plugins a standalone or flannel conflist names, as a distribution ships them.
	for _, b := range []string{"bridge", "portmap", "flannel"} {
		mustWrite(t, filepath.Join(root, DefaultBinDir, b), "#!/bin/sh\n")
	}
	return Options{
		Root: root, SourceDir: src, Mode: mode,
		Kubeconfig: DefaultKubeconfig, APIServer: "192.0.2.10:6443",
		TokenFile: filepath.Join(sa, "token"), CAFile: filepath.Join(sa, "ca.crt"),
		PollInterval: 10 * time.Millisecond,
		Getenv:       func(string) string { return "" },
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newInstaller(t *testing.T, o Options) *Installer {
	t.Helper()
	in, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// snapshot lists every file under root with its mode, owner, inode and content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		v := st.Mode().String() + " " + fmt.Sprintf("%d:%d ino=%d", sys.Uid, sys.Gid, sys.Ino)
		if st.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			v += " " + string(b)
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInstallStandalone(t *testing.T) {
	o := testOptions(t, ModeStandalone)
	in := newInstaller(t, o)
	if err := in.Install(context.Background()); err != nil {
		t.Fatalf("Install: %v", err)
	}
	for _, b := range DefaultBinaries {
		p := filepath.Join(o.Root, DefaultBinDir, b)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode().Perm() != 0o755 || sys.Uid != 0 || sys.Gid != 0 {
			t.Errorf("%s: mode %v owner %d:%d, want 0755 root:root", b, st.Mode().Perm(), sys.Uid, sys.Gid)
		}
	}
	l, err := conflist.Read(filepath.Join(o.Root, DefaultConfDir, conflist.DefaultFileName))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bridge", "portmap", "kubevs"}, l.Types()); diff != "" {
		t.Errorf("conflist types (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(l.Plugins[0]), `"kubeconfig":"/var/lib/kubevs/kubeconfig"`) {
		t.Errorf("kubevs-ipam is not given the kubeconfig: %s", l.Plugins[0])
	}
	kc := filepath.Join(o.Root, DefaultKubeconfig)
	st, err := os.Stat(kc)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(kc)
	for _, want := range []string{"server: https://192.0.2.10:6443", "tokenFile: " + DefaultKubeconfig + ".token", "certificate-authority-data: LS0t", "current-context: kubevs"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("kubeconfig lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "token-1") {
		t.Errorf("kubeconfig embeds the token instead of referencing the token file:\n%s", b)
	}
	if st, err := os.Stat(kc + ".token"); err != nil || st.Mode().Perm() != 0o600 || !fileHas(kc+".token", "token-1") {
		t.Errorf("token file beside the kubeconfig: %v, %v; want 0600 holding token-1", st, err)
	}
	if err := in.Installed(); err != nil {
		t.Errorf("Installed after Install: %v", err)
	}
}

func TestReinstallIsIdempotent(t *testing.T) {
	o := testOptions(t, ModeStandalone)
	// A crashed earlier run left temporary files: they go, and nothing else does.
	mustWrite(t, filepath.Join(o.Root, DefaultBinDir, ".kubevs.tmp-4242"), "half a binary")
	mustWrite(t, filepath.Join(o.Root, DefaultConfDir, ".00-kubevs.conflist.tmp-4242"), "{")
	if err := newInstaller(t, o).Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, o.Root)
	for _, p := range []string{"opt/cni/bin/.kubevs.tmp-4242", "etc/cni/net.d/.00-kubevs.conflist.tmp-4242"} {
		if _, ok := before[p]; ok {
			t.Errorf("stale temporary file %s survived the install", p)
		}
	}
	// A second installer (a restarted pod) changes nothing: not even an inode.
	if err := newInstaller(t, o).Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, snapshot(t, o.Root)); diff != "" {
		t.Errorf("reinstall changed files (-before +after):\n%s", diff)
	}
}

func TestChainedInstallAndUninstall(t *testing.T) {
	o := testOptions(t, ModeChained)
	orig := filepath.Join(o.Root, DefaultConfDir, "10-flannel.conflist")
	mustWrite(t, orig, flannelConflist)
	before := snapshot(t, o.Root)
	in := newInstaller(t, o)
	if err := in.Install(context.Background()); err != nil {
		t.Fatalf("Install: %v", err)
	}
	l, err := conflist.Read(filepath.Join(o.Root, DefaultConfDir, conflist.DefaultFileName))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"flannel", "portmap", "kubevs"}, l.Types()); diff != "" {
		t.Errorf("types (-want +got):\n%s", diff)
	}
	if l.Name != "cbr0" || l.CNIVersion != "0.3.1" {
		t.Errorf("name/cniVersion = %s/%s, want the original's cbr0/0.3.1", l.Name, l.CNIVersion)
	}
	if err := in.Uninstall(context.Background()); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	// What was there before remains, byte for byte; every file kubevs added is gone.
	if diff := cmp.Diff(files(before), files(snapshot(t, o.Root))); diff != "" {
		t.Errorf("files after uninstall (-before install +after uninstall):\n%s", diff)
	}
	if b, _ := os.ReadFile(orig); string(b) != flannelConflist {
		t.Errorf("original conflist changed:\n%s", b)
	}
	if err := in.Installed(); err == nil {
		t.Error("Installed after Uninstall")
	}
}

func TestChainedFollowsTheNetwork(t *testing.T) {
	o := testOptions(t, ModeChained)
	in := newInstaller(t, o)
	if err := in.Install(context.Background()); !errors.Is(err, ErrWaiting) {
		t.Fatalf("Install with no network: err = %v, want ErrWaiting", err)
	}
	mustWrite(t, filepath.Join(o.Root, DefaultConfDir, "10-flannel.conflist"), flannelConflist)
	if err := in.Install(context.Background()); err != nil {
		t.Fatalf("Install once the network is there: %v", err)
	}
	// The network add-on rewrites its file: kubevs follows.
	mustWrite(t, filepath.Join(o.Root, DefaultConfDir, "10-flannel.conflist"),
		`{"name":"cbr0","cniVersion":"1.0.0","plugins":[{"type":"flannel"}]}`)
	if err := in.Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := conflist.Read(filepath.Join(o.Root, DefaultConfDir, conflist.DefaultFileName))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"flannel", "kubevs"}, l.Types()); diff != "" || l.CNIVersion != "1.0.0" {
		t.Errorf("cniVersion %s, types (-want +got):\n%s", l.CNIVersion, diff)
	}
	// The network's owner removes it: the chained copy goes too.
	if err := os.Remove(filepath.Join(o.Root, DefaultConfDir, "10-flannel.conflist")); err != nil {
		t.Fatal(err)
	}
	if err := in.Install(context.Background()); !errors.Is(err, ErrWaiting) {
		t.Fatalf("Install after the network left: err = %v, want ErrWaiting", err)
	}
	if _, err := os.Stat(filepath.Join(o.Root, DefaultConfDir, conflist.DefaultFileName)); !os.IsNotExist(err) {
		t.Errorf("chained conflist outlived its network: %v", err)
	}
	mustWrite(t, filepath.Join(o.Root, DefaultConfDir, "10-flannel.conflist"), flannelConflist)
	if err := in.Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A file that sorts before ours would shadow it: refuse rather than write a dead file.
	mustWrite(t, filepath.Join(o.Root, DefaultConfDir, "0-early.conf"), `{"name":"e","type":"ptp"}`)
	if err := in.Install(context.Background()); err == nil || !strings.Contains(err.Error(), "sorts before") {
		t.Errorf("Install with a file sorting first: err = %v", err)
	}
}

// TestRunRestores: while Run runs, a deleted or overwritten conflist, a deleted binary and a
// rotated token are put right.
func TestRunRestores(t *testing.T) {
	o := testOptions(t, ModeStandalone)
	in := newInstaller(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	conf := filepath.Join(o.Root, DefaultConfDir, conflist.DefaultFileName)
	bin := filepath.Join(o.Root, DefaultBinDir, "kubevs")
	kc := filepath.Join(o.Root, DefaultKubeconfig)
	probe := newInstaller(t, o) // the startup probe runs in its own process
	waitFor(t, "first install", func() bool { return probe.Installed() == nil && fileHas(bin, "echo kubevs") })
	want, _ := os.ReadFile(conf)

	if err := os.Remove(conf); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "conflist restored after deletion", func() bool { return fileHas(conf, string(want)) })
	mustWrite(t, conf, `{"name":"evil","cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}`)
	waitFor(t, "conflist restored after overwrite", func() bool { b, _ := os.ReadFile(conf); return string(b) == string(want) })
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "binary restored", func() bool { return fileHas(bin, "echo kubevs") })
	mustWrite(t, o.TokenFile, "token-2\n")
	before, _ := os.ReadFile(kc)
	waitFor(t, "the token file follows the rotated token", func() bool { return fileHas(kc+".token", "token-2") })
	if after, _ := os.ReadFile(kc); string(after) != string(before) {
		t.Errorf("kubeconfig rewritten for a token rotation:\n%s", after)
	}
}

// files keeps the regular files of a snapshot.
func files(snap map[string]string) map[string]string {
	out := map[string]string{}
	for p, v := range snap {
		if strings.HasPrefix(v, "-") {
			out[p] = v
		}
	}
	return out
}

func fileHas(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBinDirSafety(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, binDir string)
		allow   bool
		wantErr string
	}{
		{name: "world-writable", prepare: chmod(0o777), wantErr: "group- or world-writable"},
		{name: "group-writable", prepare: chmod(0o775), wantErr: "group- or world-writable"},
		{name: "sticky world-writable", prepare: chmod(0o1777), wantErr: "group- or world-writable"},
		{name: "not root-owned", prepare: chown(1000), wantErr: "owned by uid 1000"},
		{name: "parent world-writable", prepare: func(t *testing.T, d string) { chmod(0o777)(t, filepath.Dir(d)) }, wantErr: "world-writable"},
		{name: "symlink", prepare: symlink, wantErr: "not a directory"},
		{name: "explicitly allowed", prepare: chmod(0o777), allow: true},
		{name: "safe", prepare: chmod(0o755)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions(t, ModeStandalone)
			o.AllowInsecureBinDir = tt.allow
			binDir := filepath.Join(o.Root, DefaultBinDir)
			if err := os.MkdirAll(binDir, 0o755); err != nil {
				t.Fatal(err)
			}
			tt.prepare(t, binDir)
			err := newInstaller(t, o).Install(context.Background())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Install: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Install err = %v, want one containing %q", err, tt.wantErr)
			}
			if _, err := os.Stat(filepath.Join(o.Root, DefaultBinDir, "kubevs")); err == nil {
				t.Error("a binary was installed into an unsafe directory")
			}
		})
	}
}

func chmod(m os.FileMode) func(*testing.T, string) {
	return func(t *testing.T, d string) {
		if err := os.Chmod(d, m); err != nil {
			t.Fatal(err)
		}
	}
}

func chown(uid int) func(*testing.T, string) {
	return func(t *testing.T, d string) {
		if err := os.Chown(d, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(t *testing.T, d string) {
	other := d + "-real"
	if err := os.Rename(d, other); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, d); err != nil {
		t.Fatal(err)
	}
}

func TestStandaloneNeedsTheReferencePlugins(t *testing.T) {
	o := testOptions(t, ModeStandalone)
	if err := os.Remove(filepath.Join(o.Root, DefaultBinDir, "portmap")); err != nil {
		t.Fatal(err)
	}
	err := newInstaller(t, o).Install(context.Background())
	if !errors.Is(err, ErrMissingPlugins) || !strings.Contains(err.Error(), "[portmap]") {
		t.Fatalf("Install without portmap: err = %v, want ErrMissingPlugins naming portmap", err)
	}
	if _, err := os.Stat(filepath.Join(o.Root, DefaultConfDir, conflist.DefaultFileName)); !os.IsNotExist(err) {
		t.Errorf("a conflist naming a missing plugin was written: %v", err)
	}
}

func TestUninstallLeavesReplacedBinary(t *testing.T) {
	o := testOptions(t, ModeStandalone)
	in := newInstaller(t, o)
	if err := in.Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	replaced := filepath.Join(o.Root, DefaultBinDir, "kubevs-proxier")
	mustWrite(t, replaced, "someone else's build")
	if err := in.Uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !fileHas(replaced, "someone else's build") {
		t.Error("uninstall removed a binary it no longer owned")
	}
	if _, err := os.Stat(filepath.Join(o.Root, DefaultBinDir, "kubevs")); !os.IsNotExist(err) {
		t.Errorf("kubevs binary left after uninstall: %v", err)
	}
}

// TestLaunchProxier: on a node without the DaemonSet, the plugin launches the proxier with a
// configuration the installer writes (kubeconfig and node name filled in), and uninstall
// removes it.
func TestLaunchProxier(t *testing.T) {
	o := testOptions(t, ModeStandalone)
	o.LaunchProxier = true
	o.Standalone.IPAM.NodeName = "node-1"
	o.ProxierConfigSource = filepath.Join(t.TempDir(), "proxier.yaml")
	mustWrite(t, o.ProxierConfigSource, "apiVersion: kubevs.io/v1alpha1\nkind: ProxierConfiguration\nclusterCIDRs: [10.244.0.0/16]\n")
	in := newInstaller(t, o)
	if err := in.Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(o.Root, DefaultProxierConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := "apiVersion: kubevs.io/v1alpha1\nclusterCIDRs:\n- 10.244.0.0/16\nkind: ProxierConfiguration\nkubeconfig: /var/lib/kubevs/kubeconfig\nnodeName: node-1\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("proxier configuration (-want +got):\n%s", diff)
	}
	l, err := conflist.Read(filepath.Join(o.Root, DefaultConfDir, conflist.DefaultFileName))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := conflist.DecodePlugin(append([]byte(`{"cniVersion":"1.1.0","name":"kubevs",`), l.Plugins[2][1:]...)); err != nil ||
		p.Launch == nil || !p.Launch.Enabled || p.Launch.ProxierBinary != "/opt/cni/bin/kubevs-proxier" || p.Launch.ConfigPath != DefaultProxierConfig {
		t.Errorf("kubevs entry does not launch the proxier with its configuration: %s (%v)", l.Plugins[2], err)
	}
	if err := in.Uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(o.Root, DefaultProxierConfig)); !os.IsNotExist(err) {
		t.Errorf("uninstall left the proxier configuration: %v", err)
	}
}

// TestPartialInstallIsRecorded: binaries written before a later step failed are still
// recorded, so that uninstall removes them.
func TestPartialInstallIsRecorded(t *testing.T) {
	o := testOptions(t, ModeStandalone)
	o.APIServer = "API_SERVER_HOST:6443" // the kubeconfig step fails
	in := newInstaller(t, o)
	if err := in.Install(context.Background()); err == nil {
		t.Fatal("Install with a placeholder API server succeeded")
	}
	if _, err := os.Stat(filepath.Join(o.Root, DefaultBinDir, "kubevs")); err != nil {
		t.Fatalf("binaries were not installed before the failing step: %v", err)
	}
	if err := newInstaller(t, o).Uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(o.Root, DefaultBinDir, "kubevs")); !os.IsNotExist(err) {
		t.Errorf("uninstall after a partial install left the kubevs binary: %v", err)
	}
}
