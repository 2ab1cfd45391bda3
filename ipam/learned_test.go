package ipam

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/conflist"
)

// A node whose proxier and API server are both too slow to answer still gets pod addresses:
// ADD allocates from the ranges a live source gave earlier, the same ones.
func TestAddGoesOnWithLearnedRangesWhenLiveSourcesFail(t *testing.T) {
	dir := t.TempDir()
	podCIDRs := []netip.Prefix{netip.MustParsePrefix("10.244.7.0/24")}
	down := false
	var out bytes.Buffer
	p := &Plugin{Stdout: &out, Resolver: Resolver{
		NodeAPI: func(context.Context, string) ([]netip.Prefix, error) {
			if down {
				return nil, errors.New("read response: context deadline exceeded")
			}
			return podCIDRs, nil
		},
		APIServer: func(context.Context, string, string) ([]netip.Prefix, error) {
			return nil, errors.New("context deadline exceeded")
		},
	}}
	ipam := map[string]any{"type": "kubevs-ipam", "dataDir": dir, "nodeName": "node-1", "kubeconfig": "/etc/kubevs/kubeconfig"}
	conf := netConf(t, "1.1.0", ipam, nil)

	if err := p.Add(args("c1", conf)); err != nil {
		t.Fatalf("ADD with the node API up: %v", err)
	}
	down = true
	out.Reset()
	if err := p.Add(args("c2", conf)); err != nil {
		t.Fatalf("ADD with both live sources down: %v", err)
	}
	if got := compactJSON(t, out.Bytes()); !strings.Contains(got, `"address":"10.244.7.3/24"`) {
		t.Errorf("ADD from the learned ranges: %s, want 10.244.7.3/24", got)
	}
	if err := p.Status(args("", conf)); err != nil {
		t.Errorf("STATUS with the learned ranges: %v", err)
	}

	// Another node's memory (the same data dir after a rename) is not used.
	other := netConf(t, "1.1.0", map[string]any{"type": "kubevs-ipam", "dataDir": dir, "nodeName": "node-2", "kubeconfig": "/k"}, nil)
	err := p.Add(args("c3", other))
	var e *types.Error
	if !errors.As(err, &e) || e.Code != types.ErrTryAgainLater || !strings.Contains(err.Error(), "static ranges: no podCIDRs") {
		t.Errorf("ADD on node-2 with node-1's memory: %v, want error %d (try again later) listing every source", err, types.ErrTryAgainLater)
	}
}

func TestResolveWithMemory(t *testing.T) {
	p4 := []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24")}
	p46 := []netip.Prefix{netip.MustParsePrefix("10.244.2.0/24"), netip.MustParsePrefix("fd00:2::/64")}
	static := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	ok := func(ps []netip.Prefix) func() ([]netip.Prefix, error) {
		return func() ([]netip.Prefix, error) { return ps, nil }
	}
	fail := func() ([]netip.Prefix, error) { return nil, errors.New("down") }
	tests := []struct {
		name            string
		file            string // content of learned_ranges ("" for none)
		nodeAPI, apiSrv func() ([]netip.Prefix, error)
		want            []netip.Prefix
		wantSource      string
		wantFile        string
		wantErrPart     string
	}{
		{name: "live source remembered", nodeAPI: ok(p46), apiSrv: fail, want: p46, wantSource: SourceNodeAPI,
			wantFile: "node-1\n10.244.2.0/24\nfd00:2::/64\n"},
		{name: "API server remembered", nodeAPI: fail, apiSrv: ok(p4), want: p4, wantSource: SourceAPIServer,
			wantFile: "node-1\n10.244.1.0/24\n"},
		{name: "a changed Node replaces the memory", file: "node-1\n10.244.9.0/24\n", nodeAPI: ok(p4), apiSrv: fail,
			want: p4, wantSource: SourceNodeAPI, wantFile: "node-1\n10.244.1.0/24\n"},
		{name: "memory before static", file: "node-1\n10.244.2.0/24\nfd00:2::/64\n", nodeAPI: fail, apiSrv: fail,
			want: p46, wantSource: SourceLearned, wantFile: "node-1\n10.244.2.0/24\nfd00:2::/64\n"},
		{name: "another node's memory is not used", file: "node-9\n10.244.2.0/24\n", nodeAPI: fail, apiSrv: fail,
			want: static, wantSource: SourceStatic, wantFile: "node-9\n10.244.2.0/24\n"},
		{name: "a damaged memory is skipped and named", file: "node-1\n10.244.2.0/24\nnot a cidr\n", nodeAPI: fail, apiSrv: fail,
			want: static, wantSource: SourceStatic, wantFile: "node-1\n10.244.2.0/24\nnot a cidr\n"},
		{name: "a memory the rules refuse is skipped", file: "node-1\n10.244.2.0/24\n10.244.3.0/24\n", nodeAPI: fail, apiSrv: fail,
			want: static, wantSource: SourceStatic, wantFile: "node-1\n10.244.2.0/24\n10.244.3.0/24\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, learnedName)
			if tt.file != "" {
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := Resolver{
				NodeAPI:   func(context.Context, string) ([]netip.Prefix, error) { return tt.nodeAPI() },
				APIServer: func(context.Context, string, string) ([]netip.Prefix, error) { return tt.apiSrv() },
				memory:    &rangeMemory{dir: dir},
			}
			conf := &conflist.IPAMConf{Kubeconfig: "/k", Ranges: []string{"10.0.0.0/24"}}
			got, source, err := r.Resolve(context.Background(), conf, "node-1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" || source != tt.wantSource {
				t.Errorf("source %q (want %q), ranges (-want +got):\n%s", source, tt.wantSource, diff)
			}
			b, _ := os.ReadFile(path)
			if string(b) != tt.wantFile {
				t.Errorf("%s holds %q, want %q", learnedName, b, tt.wantFile)
			}
			if st, err := os.Stat(path); err == nil && st.Mode().Perm() != 0o600 && tt.file == "" {
				t.Errorf("%s mode %v, want 0600", learnedName, st.Mode().Perm())
			}
		})
	}
}
