package ipam

import (
	"encoding/json"
	"math/big"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/conflist"
)

// FuzzDecodeIPAM feeds arbitrary stdin to kubevs-ipam's configuration decoder. What it
// accepts names a store directory inside dataDir, has ranges the allocator can serve (a
// gateway and at least one address, both inside the range, the gateway not handed out), and
// re-encodes to a configuration that decodes to the same value.
func FuzzDecodeIPAM(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"k8s-pod-network","type":"bridge","ipam":{"type":"kubevs-ipam","ranges":["10.244.1.0/24","fd00:10:244:1::/64"]}}`))
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","ipam":{"type":"kubevs-ipam","dataDir":"/d","nodeAPISocket":"/s","kubeconfig":"/k","nodeName":"a","ranges":["10.0.0.0/30"],"routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1"}]},"cni.dev/valid-attachments":[{"containerID":"c","ifname":"eth0"}]}`))
	f.Add([]byte(`{"name":"..","ipam":{"type":"kubevs-ipam","ranges":["::ffff:10.0.0.0/120"]}}`))
	f.Add([]byte(`{"name":"n","ipam":{"type":"kubevs-ipam","ranges":["fd00::/126"],"routes":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := conflist.DecodeIPAM(data)
		if err != nil {
			return
		}
		dir := filepath.Join(n.IPAM.DataDir, n.Name)
		if filepath.Dir(dir) != filepath.Clean(n.IPAM.DataDir) || filepath.Base(dir) != n.Name {
			t.Fatalf("network %q in dataDir %q has its store at %q, not inside", n.Name, n.IPAM.DataDir, dir)
		}
		ranges, err := conflist.ParseRanges(n.IPAM.Ranges)
		if err != nil {
			t.Fatalf("accepted ranges do not parse: %v", err)
		}
		for _, p := range ranges {
			gw := Gateway(p)
			first, last := usable(p)
			if !p.Contains(gw) || !p.Contains(first) || !p.Contains(last) || first.Compare(last) > 0 || inUsable(p, gw) {
				t.Fatalf("range %s: gateway %s, usable %s-%s", p, gw, first, last)
			}
			if Size(p).Cmp(big.NewInt(1)) < 0 {
				t.Fatalf("range %s: size %s", p, Size(p))
			}
		}
		out, err := json.Marshal(map[string]any{
			"cniVersion": n.CNIVersion, "name": n.Name, "ipam": n.IPAM,
			"cni.dev/valid-attachments": n.ValidAttachments,
		})
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := conflist.DecodeIPAM(out)
		if err != nil {
			t.Fatalf("decode of the re-encoded %s: %v", out, err)
		}
		if diff := cmp.Diff(n, back); diff != "" {
			t.Fatalf("round trip changed the configuration (-first +second):\n%s", diff)
		}
	})
}
