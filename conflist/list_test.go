package conflist

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// testPlugin is the kubevs stanza the golden files were generated with.
var testPlugin = PluginConf{
	Socket:   "/run/kubevs/proxier.sock",
	LogFile:  "/var/log/kubevs/plugin.log",
	Launch:   &LaunchConf{Enabled: true, ProxierBinary: "/opt/cni/bin/kubevs-proxier", ConfigPath: "/etc/kubevs/proxier.yaml"},
	Timeouts: &Timeouts{API: "1s"},
}

func TestChainGolden(t *testing.T) {
	tests := []struct {
		dir        string
		wantSource string
		wantTypes  []string
	}{
		{dir: "flannel", wantSource: "10-flannel.conflist", wantTypes: []string{"flannel", "portmap", "kubevs"}},
		{dir: "bridge", wantSource: "10-containerd-net.conflist", wantTypes: []string{"bridge", "portmap", "kubevs"}},
		{dir: "single-conf", wantSource: "10-mynet.conf", wantTypes: []string{"bridge", "kubevs"}},
		{dir: "kubevs-present", wantSource: "10-net.conflist", wantTypes: []string{"calico", "bandwidth", "kubevs"}},
		{dir: "unknown-fields", wantSource: "05-vendor.conflist", wantTypes: []string{"vendor-cni", "kubevs"}},
		{dir: "ours-ignored", wantSource: "10-flannel.conflist", wantTypes: []string{"flannel", "portmap", "kubevs"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", "chain", tt.dir)
			src, err := FindExisting(dir, DefaultFileName)
			if err != nil {
				t.Fatalf("FindExisting: %v", err)
			}
			if got := filepath.Base(src); got != tt.wantSource {
				t.Errorf("source = %s, want %s", got, tt.wantSource)
			}
			existing, err := Read(src)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			chained, err := Chain(existing, testPlugin)
			if err != nil {
				t.Fatalf("Chain: %v", err)
			}
			if diff := cmp.Diff(tt.wantTypes, chained.Types()); diff != "" {
				t.Errorf("plugin types (-want +got):\n%s", diff)
			}
			if chained.Name != existing.Name || chained.CNIVersion != existing.CNIVersion {
				t.Errorf("name/cniVersion = %q/%q, want the source's %q/%q", chained.Name, chained.CNIVersion, existing.Name, existing.CNIVersion)
			}
			out, err := chained.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("chain", tt.dir+".golden"), out)

			// Re-chaining our own output changes nothing: reinstall is idempotent.
			again, err := Parse(out, DefaultFileName)
			if err != nil {
				t.Fatalf("parse our output: %v", err)
			}
			again, err = Chain(again, testPlugin)
			if err != nil {
				t.Fatal(err)
			}
			out2, _ := again.Marshal()
			if diff := cmp.Diff(string(out), string(out2)); diff != "" {
				t.Errorf("chaining twice differs (-once +twice):\n%s", diff)
			}
		})
	}
}

// TestChainPreservesForeignValues checks that every plugin entry and top-level field kubevs
// does not own comes out with the same value, byte for byte once whitespace is removed.
func TestChainPreservesForeignValues(t *testing.T) {
	for _, dir := range []string{"flannel", "bridge", "kubevs-present", "unknown-fields"} {
		t.Run(dir, func(t *testing.T) {
			src, err := FindExisting(filepath.Join("testdata", "chain", dir), DefaultFileName)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			var in struct {
				Plugins []json.RawMessage `json:"plugins"`
			}
			var inTop map[string]json.RawMessage
			if err := json.Unmarshal(data, &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &inTop); err != nil {
				t.Fatal(err)
			}
			l, err := Parse(data, filepath.Base(src))
			if err != nil {
				t.Fatal(err)
			}
			chained, err := Chain(l, testPlugin)
			if err != nil {
				t.Fatal(err)
			}
			out, err := chained.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Plugins []json.RawMessage `json:"plugins"`
			}
			var gotTop map[string]json.RawMessage
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &gotTop); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, p := range in.Plugins {
				if typ, _ := pluginType(p); typ != PluginType {
					want = append(want, string(compact(p)))
				}
			}
			var have []string
			for _, p := range got.Plugins[:len(got.Plugins)-1] {
				have = append(have, string(compact(p)))
			}
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("foreign plugin entries changed (-want +got):\n%s", diff)
			}
			for k, v := range inTop {
				if k == "plugins" {
					continue
				}
				if !bytes.Equal(compact(v), compact(gotTop[k])) {
					t.Errorf("top-level %q = %s, want %s", k, gotTop[k], v)
				}
			}
		})
	}
}

func TestChainRefusesPreChainingVersions(t *testing.T) {
	for _, v := range []string{"", "0.1.0", "0.2.0"} {
		l := &List{Name: "old", CNIVersion: v, Plugins: []json.RawMessage{[]byte(`{"type":"bridge"}`)}}
		if _, err := Chain(l, PluginConf{}); err == nil || !strings.Contains(err.Error(), "predates chained plugins") {
			t.Errorf("cniVersion %q: err = %v", v, err)
		}
	}
}

func TestStandaloneGolden(t *testing.T) {
	tests := []struct {
		name string
		opts StandaloneOptions
	}{
		{name: "standalone-default", opts: StandaloneOptions{
			IPAM: IPAMConf{Kubeconfig: "/var/lib/kubevs/kubeconfig"}, Plugin: testPlugin,
		}},
		{name: "standalone-static-dualstack", opts: StandaloneOptions{
			Name: "pods", CNIVersion: "1.0.0", Bridge: "br-pods", MTU: 1450,
			IPAM:   IPAMConf{NodeName: "node-1", Ranges: []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, DataDir: "/var/lib/kubevs/ipam"},
			Plugin: PluginConf{},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Standalone(tt.opts)
			if err != nil {
				t.Fatalf("Standalone: %v", err)
			}
			if diff := cmp.Diff([]string{"bridge", "portmap", "kubevs"}, l.Types()); diff != "" {
				t.Errorf("types (-want +got):\n%s", diff)
			}
			out, err := l.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), "hairpinMode") {
				t.Errorf("standalone bridge sets hairpinMode; kubevs sets hairpin itself")
			}
			golden(t, tt.name+".golden", out)
			// The bridge's ipam stanza decodes strictly as kubevs-ipam would read it.
			bridge := l.Plugins[0]
			withName := append([]byte(`{"name":"x",`), bridge[1:]...)
			if _, err := DecodeIPAM(withName); err != nil {
				t.Errorf("kubevs-ipam cannot read the stanza it is given: %v", err)
			}
			if _, err := DecodePlugin(l.Plugins[2]); err != nil {
				t.Errorf("kubevs cannot read the stanza it is given: %v", err)
			}
		})
	}
}

func TestStandaloneRejectsBadIPAM(t *testing.T) {
	_, err := Standalone(StandaloneOptions{IPAM: IPAMConf{Ranges: []string{"10.0.0.0/31"}}})
	if err == nil {
		t.Fatal("Standalone accepted a /31 range")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, file, data string
		wantErr          string
		wantTypes        []string
	}{
		{name: "list", file: "a.conflist", data: `{"name":"n","plugins":[{"type":"a"},{"type":"b"}]}`, wantTypes: []string{"a", "b"}},
		{name: "conf", file: "a.conf", data: `{"name":"n","type":"bridge"}`, wantTypes: []string{"bridge"}},
		{name: "json is a single plugin as in libcni", file: "a.json", data: `{"name":"n","type":"ptp"}`, wantTypes: []string{"ptp"}},
		{name: "duplicate key", file: "a.conflist", data: `{"name":"n","name":"m","plugins":[{"type":"a"}]}`, wantErr: "duplicate"},
		{name: "duplicate key in plugin", file: "a.conflist", data: `{"name":"n","plugins":[{"type":"a","type":"b"}]}`, wantErr: "duplicate"},
		{name: "no name", file: "a.conflist", data: `{"plugins":[{"type":"a"}]}`, wantErr: "name"},
		{name: "no plugins", file: "a.conflist", data: `{"name":"n","plugins":[]}`, wantErr: "plugins"},
		{name: "plugin without type", file: "a.conflist", data: `{"name":"n","plugins":[{"bridge":"x"}]}`, wantErr: "type"},
		{name: "plugin not an object", file: "a.conflist", data: `{"name":"n","plugins":[3]}`, wantErr: "plugins[0]"},
		{name: "list as conf", file: "a.conf", data: `{"name":"n","plugins":[{"type":"a"}]}`, wantErr: "type"},
		{name: "not json", file: "a.conflist", data: `{`, wantErr: "parse a.conflist"},
		{name: "null", file: "a.conflist", data: `null`, wantErr: "not a JSON object"},
		{name: "other extension", file: "a.yaml", data: `{}`, wantErr: "not a CNI configuration file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse([]byte(tt.data), tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.wantTypes, l.Types()); diff != "" {
				t.Errorf("types (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFindExisting(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindExisting(dir, DefaultFileName); err == nil || !strings.Contains(err.Error(), ErrNoNetwork.Error()) {
		t.Errorf("empty dir: err = %v, want ErrNoNetwork", err)
	}
	for _, n := range []string{DefaultFileName, "README", "20-b.json", "10-a.conf.bak", "15-c.conflist"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "01-dir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := FindExisting(dir, DefaultFileName)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(got) != "15-c.conflist" {
		t.Errorf("FindExisting = %s, want 15-c.conflist", got)
	}
	if err := CheckFirst(dir, DefaultFileName); err != nil {
		t.Errorf("CheckFirst: %v", err)
	}
	if err := CheckFirst(dir, "50-kubevs.conflist"); err == nil {
		t.Errorf("CheckFirst accepted a name that sorts after 15-c.conflist")
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	l, err := Standalone(StandaloneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, DefaultFileName)
	if err := Write(p, l); err != nil {
		t.Fatal(err)
	}
	back, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l, back); diff != "" {
		t.Errorf("read back (-written +read):\n%s", diff)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d files, want 1", len(entries))
	}
}
