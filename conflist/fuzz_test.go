package conflist

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzReadConflist feeds arbitrary bytes to Parse under each extension. Whatever parses must
// survive Marshal and Parse unchanged, and chaining kubevs into it must put kubevs last.
func FuzzReadConflist(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "chain", "*", "*"))
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data, uint8(0))
			f.Add(data, uint8(1))
		}
	}
	f.Add([]byte(`{"name":"n","type":"bridge"}`), uint8(1))
	f.Add([]byte(`{"name":"n","plugins":[{"type":"a","x":1e400}]}`), uint8(0))
	names := []string{"x.conflist", "x.conf", "x.json"}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		name := names[int(which)%len(names)]
		l, err := Parse(data, name)
		if err != nil {
			return
		}
		out, err := l.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed list: %v", err)
		}
		back, err := Parse(out, "x.conflist")
		if err != nil {
			t.Fatalf("Parse of our own output: %v\n%s", err, out)
		}
		if diff := cmp.Diff(l, back); diff != "" {
			t.Fatalf("round trip changed the list (-before +after):\n%s", diff)
		}
		chained, err := Chain(l, PluginConf{})
		if err != nil {
			if l.CNIVersion == "" || l.CNIVersion == "0.1.0" || l.CNIVersion == "0.2.0" {
				return
			}
			t.Fatalf("Chain: %v", err)
		}
		types := chained.Types()
		if types[len(types)-1] != PluginType {
			t.Fatalf("kubevs is not last: %v", types)
		}
		for _, typ := range types[:len(types)-1] {
			if typ == PluginType {
				t.Fatalf("an older kubevs entry survived: %v", types)
			}
		}
	})
}
