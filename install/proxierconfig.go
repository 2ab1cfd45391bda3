package install

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/kubevs/kubevs/install/atomicfile"
)

// ProxierConfiguration's type identity (package proxier/config).
const (
	proxierAPIVersion = "kubevs.io/v1alpha1"
	proxierKind       = "ProxierConfiguration"
)

// renderProxierConfig returns the configuration of a proxier launched by the plugin on the
// node: the source file (or an empty configuration) with kubeconfig and nodeName filled in
// when it leaves them out, because a proxier started on the host has no in-cluster
// credentials. Other fields are passed through for the proxier's own strict decoding.
func (o *Options) renderProxierConfig() ([]byte, error) {
	cfg := map[string]any{}
	if o.ProxierConfigSource != "" {
		data, err := os.ReadFile(o.ProxierConfigSource)
		if err != nil {
			return nil, fmt.Errorf("read proxier configuration: %w", err)
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("decode proxier configuration %s: %w", o.ProxierConfigSource, err)
		}
		if cfg == nil {
			cfg = map[string]any{}
		}
	}
	setDefault := func(k string, v any) {
		if _, ok := cfg[k]; !ok && v != "" {
			cfg[k] = v
		}
	}
	setDefault("apiVersion", proxierAPIVersion)
	setDefault("kind", proxierKind)
	setDefault("kubeconfig", o.Kubeconfig)
	setDefault("nodeName", o.Standalone.IPAM.NodeName)
	if cfg["apiVersion"] != proxierAPIVersion || cfg["kind"] != proxierKind {
		return nil, fmt.Errorf("proxier configuration %s: %v/%v, want %s/%s", o.ProxierConfigSource, cfg["apiVersion"], cfg["kind"], proxierAPIVersion, proxierKind)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode proxier configuration: %w", err)
	}
	return out, nil
}

func (in *Installer) installProxierConfig(ctx context.Context) error {
	if !in.o.LaunchProxier {
		return nil
	}
	data, err := in.o.renderProxierConfig()
	if err != nil {
		return err
	}
	path := in.o.host(in.o.ProxierConfig)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create proxier configuration directory: %w", err)
	}
	in.state.ProxierConfig = in.o.ProxierConfig
	if same(path, data, 0o600) {
		return nil
	}
	if err := atomicfile.WriteFile(path, data, atomicfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("write proxier configuration: %w", err)
	}
	klog.FromContext(ctx).Info("Wrote proxier configuration", "path", in.o.ProxierConfig)
	return nil
}
