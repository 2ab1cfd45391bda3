package demo

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

func TestParseManifestOfTheRepository(t *testing.T) {
	data, err := os.ReadFile("../../install/manifests/kubevs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"namespace":      m.Namespace.Name,
		"serviceAccount": m.ServiceAccount.Namespace + "/" + m.ServiceAccount.Name,
		"clusterRole":    m.ClusterRole.Name,
		"binding":        m.ClusterRoleBinding.RoleRef.Name + " -> " + m.ClusterRoleBinding.Subjects[0].Namespace + "/" + m.ClusterRoleBinding.Subjects[0].Name,
	}
	want := map[string]string{
		"namespace":      "kubevs-system",
		"serviceAccount": "kubevs-system/kubevs",
		"clusterRole":    "kubevs",
		"binding":        "kubevs -> kubevs-system/kubevs",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
	// The proxier configuration covers the demo node's pods and serves health where the demo
	// polls it.
	var cfg struct {
		Kind               string   `json:"kind"`
		ClusterCIDRs       []string `json:"clusterCIDRs"`
		HealthzBindAddress string   `json:"healthzBindAddress"`
	}
	if err := yaml.Unmarshal([]byte(m.ProxierConfig), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Kind != "ProxierConfiguration" || !strings.HasSuffix(proxierReadyz, cfg.HealthzBindAddress+"/readyz") {
		t.Errorf("proxier.yaml: kind %q, health %q; the demo polls %s", cfg.Kind, cfg.HealthzBindAddress, proxierReadyz)
	}
	if diff := cmp.Diff([]string{"10.244.0.0/16"}, cfg.ClusterCIDRs); diff != "" {
		t.Errorf("clusterCIDRs (-want +got):\n%s", diff)
	}
}

func TestParseManifestErrors(t *testing.T) {
	const identity = `apiVersion: v1
kind: Namespace
metadata: {name: ns}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa, namespace: ns}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: r}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: r}
`
	const config = `---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data:
  proxier.yaml: "kind: ProxierConfiguration"
`
	tests := []struct {
		name, in, wantErr string
	}{
		{"complete", identity + config, ""},
		{"no proxier configuration", identity, "lacks the proxier.yaml"},
		{"no identity", strings.TrimPrefix(config, "---\n"), "lacks the Namespace"},
		{"unknown field", identity + config + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\nbogus: 1\n", "bogus"},
		{"not yaml", "kind: [", "decode document 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.in))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
