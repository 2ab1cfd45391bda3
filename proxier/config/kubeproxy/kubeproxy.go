// Package kubeproxy translates kube-proxy's language into kubevs's: a
// KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1, the config.conf of
// kube-system/kube-proxy's ConfigMap) and kube-proxy's command-line flags become a
// config.Configuration. It is the only package that knows kube-proxy exists; nothing below
// proxier/config does.
//
// Every field of the file is classified by its path (fields.go): honoured (translated),
// ignored (reported once, with the reason, and the proxier starts) or refused (an error
// naming the field and the reason; the proxier does not start). A field holding its zero
// value or kube-proxy's own default is not reported: kubeadm writes every field, most of
// them empty.
//
// Defaults are kube-proxy's, not kubevs's, wherever they differ and an outside system can
// see the difference: /healthz on 0.0.0.0:10256 (cloud load balancers probe it), NodePorts
// on every local address, strictARP off, minSyncPeriod 0.
package kubeproxy

import (
	"fmt"
	"os"
	"strings"

	kpv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/kubevs/kubevs/proxier/config"
)

// The type identity of the configuration this package reads.
var (
	Group      = kpv1alpha1.GroupName
	APIVersion = kpv1alpha1.SchemeGroupVersion.String()
)

// Kind is the kind of kube-proxy's configuration file.
const Kind = "KubeProxyConfiguration"

// Verdict is what kubevs does with a field of a KubeProxyConfiguration or a kube-proxy flag.
type Verdict string

// The verdicts of a Finding (a honoured field is not reported).
const (
	Ignored Verdict = "ignored"
	Refused Verdict = "refused"
)

// Finding reports one field kubevs does not honour: its path in the file (or the flag's
// name, "--flag"), the verdict and the reason.
type Finding struct {
	Path    string
	Verdict Verdict
	Reason  string
}

func (f Finding) String() string { return fmt.Sprintf("%s: %s: %s", f.Path, f.Verdict, f.Reason) }

// Report lists the findings of one translation, each path once, in the order found.
type Report []Finding

// Refused returns the refused findings.
func (r Report) Refused() Report {
	var out Report
	for _, f := range r {
		if f.Verdict == Refused {
			out = append(out, f)
		}
	}
	return out
}

// Err returns an error listing the refused findings, or nil when there are none.
func (r Report) Err() error {
	ref := r.Refused()
	if len(ref) == 0 {
		return nil
	}
	msgs := make([]string, len(ref))
	for i, f := range ref {
		msgs[i] = f.Path + ": " + f.Reason
	}
	return fmt.Errorf("refused KubeProxyConfiguration fields: %s", strings.Join(msgs, "; "))
}

// IsKubeProxyConfiguration reports whether data carries kube-proxy's configuration group
// (any version: Decode refuses the versions it does not know with a clear error).
func IsKubeProxyConfiguration(data []byte) bool {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return false
	}
	return strings.HasPrefix(tm.APIVersion, Group+"/") || (tm.APIVersion == "" && tm.Kind == Kind)
}

// Decode decodes a KubeProxyConfiguration, translates it into a validated kubevs
// configuration and reports the fields it ignored or refused. A refused field, a syntax
// error, a duplicate field or a value that does not fit its type is an error; an unknown
// field is ignored and reported, as kube-proxy's lenient decoding drops it.
func Decode(data []byte) (*config.Configuration, Report, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, nil, fmt.Errorf("decode KubeProxyConfiguration: %w", err)
	}
	var raw map[string]any
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &raw); err != nil {
		return nil, nil, fmt.Errorf("decode KubeProxyConfiguration: %w", err)
	}
	if raw == nil {
		raw = map[string]any{}
	}
	if err := checkTypeMeta(raw); err != nil {
		return nil, nil, err
	}
	var kp kpv1alpha1.KubeProxyConfiguration
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &kp); err != nil {
		return nil, nil, fmt.Errorf("decode KubeProxyConfiguration: %w", err)
	}
	ext, err := extensions(js)
	if err != nil {
		return nil, nil, err
	}
	rep := classify(raw)
	if err := rep.Err(); err != nil {
		return nil, rep, err
	}
	c, err := translate(&kp, ext, nil)
	if err != nil {
		return nil, rep, err
	}
	return c, rep, nil
}

// Load reads and decodes the KubeProxyConfiguration file at path (see Decode).
func Load(path string) (*config.Configuration, Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read configuration %s: %w", path, err)
	}
	c, rep, err := Decode(data)
	if err != nil {
		return nil, rep, fmt.Errorf("load %s: %w", path, err)
	}
	return c, rep, nil
}

func checkTypeMeta(raw map[string]any) error {
	av, _ := raw["apiVersion"].(string)
	kind, _ := raw["kind"].(string)
	if av != APIVersion {
		return fmt.Errorf("decode KubeProxyConfiguration: apiVersion: Unsupported value: %q: supported values: %q", av, APIVersion)
	}
	if kind != Kind {
		return fmt.Errorf("decode KubeProxyConfiguration: kind: Unsupported value: %q: supported values: %q", kind, Kind)
	}
	return nil
}
