package conflist

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// DefaultProxierSocket is the node API socket of kubevs-proxier (nodeapi.DefaultSocket).
const DefaultProxierSocket = "/run/kubevs/proxier.sock"

// maxPluginTimeout bounds the plugin's timeouts (as package plugin does).
const maxPluginTimeout = 30 * time.Second

// PluginConf is the configuration the `kubevs` chained plugin reads on stdin: its stanza in
// the conflist plus what the runtime injects (name, cniVersion, prevResult, runtimeConfig,
// args, and at GC the valid attachments). Its JSON is the schema package plugin decodes
// (plugin.Config); a test checks that every entry generated here decodes there.
type PluginConf struct {
	// Fields every CNI plugin may receive.
	CNIVersion        string               `json:"cniVersion,omitempty"`
	Name              string               `json:"name,omitempty"`
	Type              string               `json:"type"`
	Capabilities      map[string]bool      `json:"capabilities,omitempty"`
	RuntimeConfig     json.RawMessage      `json:"runtimeConfig,omitempty"`
	Args              json.RawMessage      `json:"args,omitempty"`
	DNS               json.RawMessage      `json:"dns,omitempty"`
	RawPrevResult     json.RawMessage      `json:"prevResult,omitempty"`
	ValidAttachments  []types.GCAttachment `json:"cni.dev/valid-attachments,omitempty"`
	LegacyAttachments []types.GCAttachment `json:"cni.dev/attachments,omitempty"`

	// Socket is the proxier's node API socket. Default: DefaultProxierSocket.
	Socket string `json:"socket,omitempty"`
	// Launch says whether and how the plugin starts kubevs-proxier when nothing answers on
	// Socket. Nil or disabled: the proxier runs elsewhere (DaemonSet, systemd).
	Launch *LaunchConf `json:"launch,omitempty"`
	// LogFile receives the plugin's logs (stdout carries only the CNI result). Default: stderr.
	LogFile string `json:"logFile,omitempty"`
	// LogLevel is the klog verbosity of the plugin's logs (0..10).
	LogLevel int `json:"logLevel,omitempty"`
	// Timeouts bound the plugin's waits.
	Timeouts *Timeouts `json:"timeouts,omitempty"`
}

// LaunchConf says how the plugin starts kubevs-proxier on the node.
type LaunchConf struct {
	// Enabled lets the plugin start the proxier (under a supervisor).
	Enabled bool `json:"enabled"`
	// ProxierBinary is a file name looked up in CNI_PATH, or an absolute path.
	ProxierBinary string `json:"proxierBinary,omitempty"`
	// ConfigPath is passed to the proxier as --config.
	ConfigPath string `json:"configPath,omitempty"`
	// LogFile receives the launched proxier's output.
	LogFile string `json:"logFile,omitempty"`
}

// Timeouts are Go duration strings ("500ms"), each within 0..30s.
type Timeouts struct {
	// API bounds one request to the proxier.
	API string `json:"api,omitempty"`
	// Launch bounds how long ADD waits for a proxier it just launched.
	Launch string `json:"launch,omitempty"`
}

// DecodePlugin decodes the kubevs plugin configuration strictly, applies defaults and
// validates it.
func DecodePlugin(data []byte) (*PluginConf, error) {
	var c PluginConf
	if err := DecodeStrict(data, &c); err != nil {
		return nil, fmt.Errorf("decode kubevs plugin configuration: %w", err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid kubevs plugin configuration: %w", err)
	}
	return &c, nil
}

// SetDefaults fills unset fields with their defaults. It is idempotent.
func (c *PluginConf) SetDefaults() {
	if c.Socket == "" {
		c.Socket = DefaultProxierSocket
	}
}

// Validate checks a defaulted configuration.
func (c *PluginConf) Validate() error {
	if c.Type != PluginType {
		return fmt.Errorf("type: %q, want %q", c.Type, PluginType)
	}
	if err := ValidatePath("socket", c.Socket); err != nil {
		return err
	}
	if err := validAbs("logFile", c.LogFile); err != nil {
		return err
	}
	if c.LogLevel < 0 || c.LogLevel > 10 {
		return fmt.Errorf("logLevel: %d is outside 0..10", c.LogLevel)
	}
	if l := c.Launch; l != nil {
		if b := l.ProxierBinary; b != "" && strings.ContainsRune(b, '/') {
			if err := ValidatePath("launch.proxierBinary", b); err != nil {
				return err
			}
		} else if b != "" && (b != filepath.Base(b) || b == "." || b == "..") {
			return fmt.Errorf("launch.proxierBinary: %q is not a file name", b)
		}
		if err := validAbs("launch.configPath", l.ConfigPath); err != nil {
			return err
		}
		if err := validAbs("launch.logFile", l.LogFile); err != nil {
			return err
		}
	}
	if t := c.Timeouts; t != nil {
		for _, f := range []struct{ field, v string }{{"timeouts.api", t.API}, {"timeouts.launch", t.Launch}} {
			if f.v == "" {
				continue
			}
			d, err := time.ParseDuration(f.v)
			if err != nil {
				return fmt.Errorf("%s: %w", f.field, err)
			}
			if d < 0 || d > maxPluginTimeout {
				return fmt.Errorf("%s: %v is outside 0..%v", f.field, d, maxPluginTimeout)
			}
		}
	}
	return nil
}

// Entry returns c as a plugin entry of a conflist: the runtime-injected fields (name,
// cniVersion, prevResult, runtimeConfig, args, valid attachments) are left out.
func (c PluginConf) Entry() (json.RawMessage, error) {
	c.CNIVersion, c.Name, c.RuntimeConfig, c.Args, c.RawPrevResult = "", "", nil, nil, nil
	c.ValidAttachments, c.LegacyAttachments = nil, nil
	c.Type = PluginType
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode kubevs plugin entry: %w", err)
	}
	return b, nil
}
