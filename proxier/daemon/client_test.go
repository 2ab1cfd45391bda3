package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
