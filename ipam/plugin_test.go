package ipam

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/conflist"
	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// netConf is the configuration a bridge plugin would pass to kubevs-ipam.
func netConf(t *testing.T, version string, ipam map[string]any, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{"cniVersion": version, "name": "kubevs", "type": "bridge", "bridge": "kubevs0", "ipam": ipam}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func staticIPAM(dir string, ranges ...string) map[string]any {
	return map[string]any{"type": "kubevs-ipam", "dataDir": dir, "nodeAPISocket": filepath.Join(dir, "absent.sock"),
		"nodeName": "node-1", "ranges": ranges}
}

func args(id string, conf []byte) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: id, IfName: "eth0", Netns: "/var/run/netns/" + id, StdinData: conf}
}

func TestPluginVerbs(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	p := &Plugin{Stdout: &out}
	conf := netConf(t, "1.1.0", staticIPAM(dir, "10.244.1.0/24", "fd00:10:244:1::/64"), nil)

	if err := p.Status(args("", conf)); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
	if err := p.Add(args("c1", conf)); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	want := `{"cniVersion":"1.1.0","ips":[{"address":"10.244.1.2/24","gateway":"10.244.1.1"},` +
		`{"address":"fd00:10:244:1::2/64","gateway":"fd00:10:244:1::1"}],"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0"}]}`
	if diff := cmp.Diff(want, compactJSON(t, out.Bytes())); diff != "" {
		t.Errorf("ADD result (-want +got):\n%s", diff)
	}
	if strings.Contains(out.String(), "interfaces") {
		t.Errorf("an IPAM result must not list interfaces: %s", out.String())
	}
	if err := p.Add(args("c1", conf)); err == nil || !errors.Is(err, ErrDuplicate) {
		t.Errorf("repeated ADD: err = %v, want ErrDuplicate", err)
	}
	if err := p.Check(args("c1", conf)); err != nil {
		t.Errorf("CHECK after ADD: %v", err)
	}
	for i := range 2 {
		if err := p.Del(args("c1", conf)); err != nil {
			t.Errorf("DEL #%d: %v", i+1, err)
		}
	}
	if err := p.Check(args("c1", conf)); err == nil {
		t.Error("CHECK after DEL succeeded")
	}
	// GC drops what is not valid.
	out.Reset()
	for _, id := range []string{"c2", "c3"} {
		if err := p.Add(args(id, conf)); err != nil {
			t.Fatal(err)
		}
	}
	gcConf := netConf(t, "1.1.0", staticIPAM(dir, "10.244.1.0/24", "fd00:10:244:1::/64"),
		map[string]any{"cni.dev/valid-attachments": []map[string]string{{"containerID": "c3", "ifname": "eth0"}}})
	if err := p.GC(args("", gcConf)); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if err := p.Check(args("c2", conf)); err == nil {
		t.Error("c2 survived GC")
	}
	if err := p.Check(args("c3", conf)); err != nil {
		t.Errorf("c3 did not survive GC: %v", err)
	}
}

func TestPluginOldVersionAndRoutes(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	p := &Plugin{Stdout: &out}
	ipam := staticIPAM(dir, "10.244.1.0/24")
	ipam["routes"] = []map[string]string{{"dst": "10.96.0.0/12", "gw": "10.244.1.1"}, {"dst": "fd00::/8"}}
	if err := p.Add(args("c1", netConf(t, "0.4.0", ipam, nil))); err != nil {
		t.Fatal(err)
	}
	want := `{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.244.1.2/24","gateway":"10.244.1.1"}],` +
		`"routes":[{"dst":"10.96.0.0/12","gw":"10.244.1.1"}],"dns":{}}`
	if diff := cmp.Diff(want, compactJSON(t, out.Bytes())); diff != "" {
		t.Errorf("ADD result (-want +got):\n%s", diff)
	}
}

func TestPluginErrors(t *testing.T) {
	dir := t.TempDir()
	p := &Plugin{Stdout: &bytes.Buffer{}}
	tests := []struct {
		name    string
		conf    []byte
		wantErr string
	}{
		{"no ranges anywhere", netConf(t, "1.1.0", staticIPAM(dir), nil), "node API"},
		{"exhausted", netConf(t, "1.1.0", staticIPAM(dir, "10.9.0.0/30"), nil), "no free address in range 10.9.0.0/30"},
		{"strict ipam stanza", netConf(t, "1.1.0", map[string]any{"type": "kubevs-ipam", "subnet": "10.0.0.0/8"}, nil), "unknown field"},
	}
	// Fill the /30 first.
	if err := p.Add(args("filler", netConf(t, "1.1.0", staticIPAM(dir, "10.9.0.0/30"), nil))); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Add(args("c1", tt.conf))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ADD err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if err := p.Status(args("", netConf(t, "1.1.0", staticIPAM(dir), nil))); err == nil || !strings.Contains(err.Error(), "find pod CIDRs") {
		t.Errorf("STATUS without ranges: %v", err)
	}
}

func TestResolveOrder(t *testing.T) {
	p4 := []netip.Prefix{netip.MustParsePrefix("10.244.7.0/24")}
	p46 := []netip.Prefix{netip.MustParsePrefix("10.244.8.0/24"), netip.MustParsePrefix("fd00:8::/64")}
	down := errors.New("down")
	ok := func(ps []netip.Prefix) func() ([]netip.Prefix, error) {
		return func() ([]netip.Prefix, error) { return ps, nil }
	}
	fail := func() ([]netip.Prefix, error) { return nil, down }
	tests := []struct {
		name        string
		nodeAPI     func() ([]netip.Prefix, error)
		apiServer   func() ([]netip.Prefix, error)
		kubeconfig  string
		static      []string
		want        []netip.Prefix
		wantSource  string
		wantErrPart []string
	}{
		{name: "node API first", nodeAPI: ok(p46), apiServer: ok(p4), kubeconfig: "/k", static: []string{"10.0.0.0/24"}, want: p46, wantSource: SourceNodeAPI},
		{name: "API server when the proxier is down", nodeAPI: fail, apiServer: ok(p4), kubeconfig: "/k", want: p4, wantSource: SourceAPIServer},
		{name: "proxier knows no podCIDRs yet", nodeAPI: ok(nil), apiServer: ok(p4), kubeconfig: "/k", want: p4, wantSource: SourceAPIServer},
		{name: "API server not asked without kubeconfig", nodeAPI: fail, apiServer: ok(p4), static: []string{"10.0.0.0/24"},
			want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}, wantSource: SourceStatic},
		{name: "static last", nodeAPI: fail, apiServer: fail, kubeconfig: "/k", static: []string{"10.0.0.0/24"},
			want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}, wantSource: SourceStatic},
		{name: "invalid learned ranges are skipped", nodeAPI: ok([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.1.0.0/24")}),
			apiServer: ok(p4), kubeconfig: "/k", want: p4, wantSource: SourceAPIServer},
		{name: "nothing", nodeAPI: fail, apiServer: fail, kubeconfig: "/k", wantErrPart: []string{"node API: down", "API server: down", "static ranges: no podCIDRs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Resolver{
				NodeAPI:   func(context.Context, string) ([]netip.Prefix, error) { return tt.nodeAPI() },
				APIServer: func(context.Context, string, string) ([]netip.Prefix, error) { return tt.apiServer() },
			}
			conf := &conflist.IPAMConf{Kubeconfig: tt.kubeconfig, Ranges: tt.static}
			got, source, err := r.Resolve(context.Background(), conf, "node-1")
			if tt.wantErrPart != nil {
				for _, part := range tt.wantErrPart {
					if err == nil || !strings.Contains(err.Error(), part) {
						t.Errorf("err = %v, want it to contain %q", err, part)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" || source != tt.wantSource {
				t.Errorf("source %q (want %q), ranges (-want +got):\n%s", source, tt.wantSource, diff)
			}
		})
	}
}

// TestResolveFromRealNodeAPI serves the proxier's real node API on a temporary socket.
func TestResolveFromRealNodeAPI(t *testing.T) {
	dir := t.TempDir()
	st, err := nodeapi.NewStore(filepath.Join(dir, "regs"))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "proxier.sock")
	want := []netip.Prefix{netip.MustParsePrefix("10.244.3.0/24"), netip.MustParsePrefix("fd00:3::/64")}
	srv := nodeapi.NewServer(sock, st, func() nodeapi.Status {
		return nodeapi.Status{Ready: true, NodeName: "node-1", PodCIDRs: want}
	})
	if err := srv.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	got, source, err := Resolver{}.Resolve(ctx, &conflist.IPAMConf{NodeAPISocket: sock}, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if source != SourceNodeAPI {
		t.Errorf("source = %q", source)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// helperPlugin runs the plugin exactly as kubevs-ipam's main does, through skel.
func helperPlugin() int {
	p := &Plugin{Stdout: os.Stdout}
	if e := skel.PluginMainFuncsWithError(p.Funcs(), VersionInfo, About); e != nil {
		_ = e.Print()
		return 1
	}
	return 0
}

// TestSkelDispatch runs the test binary as the plugin with the CNI environment, as a runtime
// runs kubevs-ipam.
func TestSkelDispatch(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	conf := netConf(t, "1.0.0", staticIPAM(dir, "10.244.5.0/24"), nil)
	cni := func(command, id string, stdin []byte) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=plugin", "CNI_COMMAND="+command, "CNI_CONTAINERID="+id,
			"CNI_NETNS=/var/run/netns/x", "CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin")
		cmd.Stdin = bytes.NewReader(stdin)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		err := cmd.Run()
		return stdout.String(), err
	}
	tests := []struct {
		command, id string
		stdin       []byte
		wantOK      bool
		wantOut     string
	}{
		{"VERSION", "", []byte(`{"cniVersion":"1.0.0"}`), true, `"supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]`},
		{"ADD", "c1", conf, true, `"ips":[{"address":"10.244.5.2/24","gateway":"10.244.5.1"}]`},
		{"ADD", "c1", conf, false, `already holds [10.244.5.2]`},
		{"CHECK", "c1", conf, true, ``},
		{"DEL", "c1", conf, true, ``},
		{"DEL", "c1", conf, true, ``},
		{"ADD", "c2", conf, true, `"address":"10.244.5.3/24"`},
		{"ADD", "c3", []byte(`{"cniVersion":"1.0.0","name":"kubevs","ipam":{"type":"kubevs-ipam","bogus":1}}`), false, `"code":6`},
	}
	for i, tt := range tests {
		out, err := cni(tt.command, tt.id, tt.stdin)
		if out != "" {
			out = compactJSON(t, []byte(out))
		}
		if (err == nil) != tt.wantOK {
			t.Fatalf("step %d %s %s: err = %v, want ok=%v; stdout %s", i, tt.command, tt.id, err, tt.wantOK, out)
		}
		if !strings.Contains(out, tt.wantOut) {
			t.Errorf("step %d %s %s: stdout %s, want it to contain %s", i, tt.command, tt.id, out, tt.wantOut)
		}
		if tt.command == "DEL" && out != "" {
			t.Errorf("DEL wrote %q to stdout", out)
		}
	}
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("result is not JSON: %v: %s", err, b)
	}
	return buf.String()
}
