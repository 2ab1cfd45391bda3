package kubeproxy

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/kubevs/kubevs/proxier/config"
)

// FuzzDecode feeds arbitrary files to the KubeProxyConfiguration decoder (the kube-proxy
// ConfigMap an operator points kubevs at). It never panics; what it accepts has no refused
// field, is a kubevs configuration that kubevs's own decoder takes back unchanged (so the
// translation never yields a configuration kubevs itself would refuse), and decoding is
// deterministic, report included.
func FuzzDecode(f *testing.F) {
	if data, err := os.ReadFile("testdata/kubeadm-ipvs.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(header))
	f.Add([]byte(header + "mode: ipvs\nipvs:\n  scheduler: wrr\n  excludeCIDRs: [10.0.0.0/8]\nclusterCIDR: 10.0.0.0/8,fd00::/64\n"))
	f.Add([]byte(header + "nodePortAddresses: [primary]\nbindAddress: '::'\nhealthzBindAddress: 0.0.0.0:0\n"))
	f.Add([]byte(header + "mode: nftables\nfoo: {bar: 1}\n"))
	f.Add([]byte(header + "conntrack:\n  udpTimeout: 1h\nmetricsBindAddress: 1.2.3.4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, rep, err := Decode(data)
		if err != nil {
			return
		}
		if r := rep.Refused(); len(r) != 0 {
			t.Fatalf("accepted with refused fields: %v", r)
		}
		c2, rep2, err := Decode(data)
		if err != nil || !cmp.Equal(c, c2) || !cmp.Equal(rep, rep2) {
			t.Fatalf("second decode differs: %v\n%s\n%s", err, cmp.Diff(c, c2), cmp.Diff(rep, rep2))
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal translated configuration: %v", err)
		}
		back, err := config.Decode(out)
		if err != nil {
			t.Fatalf("kubevs refuses the translation of %q: %v\n%s", data, err, out)
		}
		if diff := cmp.Diff(c, back); diff != "" {
			t.Fatalf("translated configuration changes through kubevs's decoder (-translated +decoded):\n%s", diff)
		}
	})
}
