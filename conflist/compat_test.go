package conflist_test

import (
	"encoding/json"
	"testing"

	"github.com/kubevs/kubevs/conflist"
	"github.com/kubevs/kubevs/plugin"
)

// TestEntriesDecodeInThePlugin injects what libcni injects into every kubevs entry conflist
// generates, and decodes it with the plugin's own strict parser: the schemas must agree.
func TestEntriesDecodeInThePlugin(t *testing.T) {
	confs := map[string]conflist.PluginConf{
		"empty": {},
		"full": {
			Socket: "/run/kubevs/proxier.sock", LogFile: "/var/log/kubevs/plugin.log", LogLevel: 4,
			Launch:   &conflist.LaunchConf{Enabled: true, ProxierBinary: "/opt/cni/bin/kubevs-proxier", ConfigPath: "/etc/kubevs/proxier.yaml", LogFile: "/var/log/kubevs/proxier.log"},
			Timeouts: &conflist.Timeouts{API: "1s", Launch: "3s"},
		},
	}
	for name, pc := range confs {
		t.Run(name, func(t *testing.T) {
			l, err := conflist.Standalone(conflist.StandaloneOptions{Plugin: pc})
			if err != nil {
				t.Fatal(err)
			}
			var entry map[string]any
			if err := json.Unmarshal(l.Plugins[len(l.Plugins)-1], &entry); err != nil {
				t.Fatal(err)
			}
			entry["cniVersion"], entry["name"] = l.CNIVersion, l.Name
			stdin, _ := json.Marshal(entry)
			if _, err := plugin.ParseConfig(stdin); err != nil {
				t.Errorf("the plugin refuses the entry conflist generates: %v\n%s", err, stdin)
			}
			if _, err := conflist.DecodePlugin(stdin); err != nil {
				t.Errorf("DecodePlugin refuses it: %v", err)
			}
		})
	}
}
