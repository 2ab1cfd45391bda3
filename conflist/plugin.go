package conflist

import (
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// DefaultProxierSocket is the node API socket of kubevs-proxier (nodeapi.DefaultSocket).
const DefaultProxierSocket = "/run/kubevs/proxier.sock"

// PluginConf is the configuration the `kubevs` chained plugin reads on stdin: its stanza in
// the conflist plus what the runtime injects (name, cniVersion, prevResult, runtimeConfig,
// args, and at GC the valid attachments).
type PluginConf struct {
	// Fields every CNI plugin receives.
	CNIVersion       string                `json:"cniVersion,omitempty"`
	Name             string                `json:"name,omitempty"`
	Type             string                `json:"type"`
	Capabilities     map[string]bool       `json:"capabilities,omitempty"`
	RuntimeConfig    json.RawMessage       `json:"runtimeConfig,omitempty"`
	Args             json.RawMessage       `json:"args,omitempty"`
	RawPrevResult    json.RawMessage       `json:"prevResult,omitempty"`
	ValidAttachments []types.GCAttachment `json:"cni.dev/valid-attachments,omitempty"`

	// ProxierSocket is the node API socket of kubevs-proxier. Default: DefaultProxierSocket.
	ProxierSocket string `json:"proxierSocket,omitempty"`
	// Launch, when set, lets the plugin start kubevs-proxier itself when nothing answers on
	// ProxierSocket. Nil: the proxier is managed elsewhere (DaemonSet, systemd).
	Launch *LaunchConf `json:"launch,omitempty"`
	// LogFile receives the plugin's logs (stdout carries only the CNI result). Default: stderr.
	LogFile string `json:"logFile,omitempty"`
	// LogVerbosity is the klog verbosity of the plugin's logs.
	LogVerbosity int `json:"logVerbosity,omitempty"`
}

// LaunchConf says how the plugin starts kubevs-proxier on the node.
type LaunchConf struct {
	// Binary is the absolute path of kubevs-proxier.
	Binary string `json:"binary"`
	// Config is the ProxierConfiguration file passed with --config, if any.
	Config string `json:"config,omitempty"`
	// LogFile receives the launched proxier's output.
	LogFile string `json:"logFile,omitempty"`
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
	if c.ProxierSocket == "" {
		c.ProxierSocket = DefaultProxierSocket
	}
}

// Validate checks a defaulted configuration.
func (c *PluginConf) Validate() error {
	if c.Type != PluginType {
		return fmt.Errorf("type: %q, want %q", c.Type, PluginType)
	}
	if err := ValidatePath("proxierSocket", c.ProxierSocket); err != nil {
		return err
	}
	if err := validAbs("logFile", c.LogFile); err != nil {
		return err
	}
	if c.LogVerbosity < 0 || c.LogVerbosity > 10 {
		return fmt.Errorf("logVerbosity: %d is outside 0..10", c.LogVerbosity)
	}
	if l := c.Launch; l != nil {
		if err := ValidatePath("launch.binary", l.Binary); err != nil {
			return err
		}
		if err := validAbs("launch.config", l.Config); err != nil {
			return err
		}
		if err := validAbs("launch.logFile", l.LogFile); err != nil {
			return err
		}
	}
	return nil
}

// Entry returns c as a plugin entry of a conflist: the runtime-injected fields (name,
// cniVersion, prevResult, runtimeConfig, valid attachments) are left out.
func (c PluginConf) Entry() (json.RawMessage, error) {
	c.CNIVersion, c.Name, c.RuntimeConfig, c.RawPrevResult, c.ValidAttachments = "", "", nil, nil, nil
	c.Type = PluginType
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode kubevs plugin entry: %w", err)
	}
	return b, nil
}
