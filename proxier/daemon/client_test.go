package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/kubevs/kubevs/proxier/config"
)

func TestRestConfigFromKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kc := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://192.0.2.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: secret}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := restConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://192.0.2.1:6443" || cfg.BearerToken != "secret" {
		t.Errorf("config host %q token %q", cfg.Host, cfg.BearerToken)
	}
	if _, err := NewClient(path); err != nil {
		t.Errorf("NewClient: %v", err)
	}
	if _, err := restConfig(filepath.Join(t.TempDir(), "absent")); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("restConfig of a missing file = %v, want an error naming it", err)
	}
}

func TestApplyClientConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		cc   config.ClientConnectionConfiguration
		want rest.Config
	}{
		{"defaults", config.ClientConnectionConfiguration{}, rest.Config{
			UserAgent: "kubevs-proxier",
			ContentConfig: rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf",
				AcceptContentTypes: "application/vnd.kubernetes.protobuf,application/json"},
		}},
		{"kube-proxy's clientConnection", config.ClientConnectionConfiguration{QPS: 50, Burst: 100, ContentType: "application/json", AcceptContentTypes: "application/json"}, rest.Config{
			UserAgent:     "kubevs-proxier",
			ContentConfig: rest.ContentConfig{ContentType: "application/json", AcceptContentTypes: "application/json"},
			QPS:           50, Burst: 100,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got rest.Config
			applyClientConnection(&got, tc.cc)
			if got.UserAgent != tc.want.UserAgent || got.ContentType != tc.want.ContentType ||
				got.AcceptContentTypes != tc.want.AcceptContentTypes || got.QPS != tc.want.QPS || got.Burst != tc.want.Burst {
				t.Errorf("got agent %q type %q accept %q qps %v burst %v, want %q %q %q %v %v",
					got.UserAgent, got.ContentType, got.AcceptContentTypes, got.QPS, got.Burst,
					tc.want.UserAgent, tc.want.ContentType, tc.want.AcceptContentTypes, tc.want.QPS, tc.want.Burst)
			}
		})
	}
}
