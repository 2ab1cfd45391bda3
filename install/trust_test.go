package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestUninstallDistrustsStateFile: a state file edited to name files kubevs never writes
// (outside the CNI directories, a traversal, an unknown name in the bin dir) makes uninstall
// remove none of them, even when their content matches the recorded checksum.
func TestUninstallDistrustsStateFile(t *testing.T) {
	o := testOptions(t, ModeStandalone)
	in := newInstaller(t, o)
	if err := in.Install(context.Background()); err != nil {
		t.Fatal(err)
	}
	victims := map[string]string{
		"/etc/shadow-kubevs-test":                            "root:x:0:",
		filepath.Join(DefaultBinDir, "bridge"):               "the bridge plugin",
		DefaultBinDir + "/../../../etc/hosts-kubevs":         "127.0.0.1 localhost",
		filepath.Join(DefaultConfDir, "10-flannel.conflist"): `{"name":"cbr0"}`,
	}
	var st State
	b, err := os.ReadFile(filepath.Join(o.Root, in.o.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	for p, content := range victims {
		mustWrite(t, filepath.Join(o.Root, p), content)
		sum := sha256.Sum256([]byte(content))
		st.Binaries[p] = hex.EncodeToString(sum[:])
	}
	st.Kubeconfig = "/etc/shadow-kubevs-test"
	st.ProxierConfig = DefaultBinDir + "/../../../etc/hosts-kubevs"
	st.Conflist = filepath.Join(DefaultConfDir, "10-flannel.conflist")
	b, err = json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(o.Root, in.o.StateFile), string(b))

	if err := in.Uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, content := range victims {
		if !fileHas(filepath.Join(o.Root, p), content) {
			t.Errorf("uninstall removed %s, named only by the state file", p)
		}
	}
	// What kubevs did write is gone.
	for _, p := range []string{filepath.Join(DefaultBinDir, "kubevs"), filepath.Join(DefaultBinDir, "kubevs-ipam")} {
		if _, err := os.Stat(filepath.Join(o.Root, p)); !os.IsNotExist(err) {
			t.Errorf("%s left after uninstall: %v", p, err)
		}
	}
}
