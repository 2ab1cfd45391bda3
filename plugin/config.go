// Package plugin is the kubevs chained CNI plugin: at ADD it turns hairpin on for the pod's
// bridge port and registers the pod with kubevs-proxier over the node API; at DEL it
// unregisters it; CHECK, GC and STATUS follow the CNI spec. It also launches and supervises the
// proxier when the conflist asks it to (launch.go, supervise.go). package main only wires
// skel to Funcs.
package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// SupportedVersions are the CNI spec versions the plugin speaks.
var SupportedVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// Defaults for the fields a conflist may leave out.
const (
	DefaultProxierBinary = "kubevs-proxier"
	DefaultAPITimeout    = time.Second
	DefaultLaunchTimeout = 3 * time.Second
	maxTimeout           = 30 * time.Second
)

// Config is the plugin's entry in the conflist, after libcni injected name, cniVersion and
// prevResult. Decoding is strict: an unknown field is an error naming it.
type Config struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	// Standard CNI fields the plugin accepts and ignores.
	Capabilities  map[string]bool `json:"capabilities,omitempty"`
	RuntimeConfig json.RawMessage `json:"runtimeConfig,omitempty"`
	Args          json.RawMessage `json:"args,omitempty"`
	DNS           json.RawMessage `json:"dns,omitempty"`
	// RawPrevResult is the result of the plugins before this one in the chain.
	RawPrevResult map[string]any `json:"prevResult,omitempty"`
	// ValidAttachments is set on GC (cni.dev/attachments is its old, misspelt name).
	ValidAttachments  []types.GCAttachment `json:"cni.dev/valid-attachments,omitempty"`
	LegacyAttachments []types.GCAttachment `json:"cni.dev/attachments,omitempty"`

	// Socket is the proxier's node API socket (nodeapi.DefaultSocket).
	Socket string `json:"socket,omitempty"`
	// Launch says whether and how the plugin starts the proxier.
	Launch Launch `json:"launch"`
	// LogFile receives the plugin's logs (stderr when empty; never stdout).
	LogFile string `json:"logFile,omitempty"`
	// LogLevel is the klog verbosity of the plugin's logs.
	LogLevel int `json:"logLevel,omitempty"`
	// Timeouts bound the waits of every verb.
	Timeouts Timeouts `json:"timeouts"`

	// PrevResult is RawPrevResult parsed in CNIVersion (nil when absent).
	PrevResult types.Result `json:"-"`
}

// Launch configures starting kubevs-proxier from the plugin.
type Launch struct {
	// Enabled: start the proxier (under a supervisor) when nothing answers on Socket. Off when
	// a DaemonSet or systemd runs it.
	Enabled bool `json:"enabled"`
	// ProxierBinary is a file name looked up in CNI_PATH, or an absolute path.
	ProxierBinary string `json:"proxierBinary,omitempty"`
	// ConfigPath is passed to the proxier as --config.
	ConfigPath string `json:"configPath,omitempty"`
	// LogFile receives the proxier's and the supervisor's output (DefaultProxierLog).
	LogFile string `json:"logFile,omitempty"`
}

// Timeouts bound the plugin's waits; values are Go durations ("500ms").
type Timeouts struct {
	// API bounds one request to the proxier.
	API Duration `json:"api,omitempty"`
	// Launch bounds how long ADD waits for a proxier it just launched before going on.
	Launch Duration `json:"launch,omitempty"`
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

// MarshalJSON prints the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON decodes the timeouts strictly and names the field of a bad duration.
func (t *Timeouts) UnmarshalJSON(b []byte) error {
	var raw struct {
		API    *string `json:"api"`
		Launch *string `json:"launch"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("timeouts: %w", err)
	}
	for _, f := range []struct {
		name string
		in   *string
		out  *Duration
	}{{"timeouts.api", raw.API, &t.API}, {"timeouts.launch", raw.Launch, &t.Launch}} {
		if f.in == nil {
			continue
		}
		d, err := time.ParseDuration(*f.in)
		if err != nil {
			return fmt.Errorf("%s: want a duration string like \"500ms\": %w", f.name, err)
		}
		*f.out = Duration(d)
	}
	return nil
}

// ParseConfig decodes and validates the plugin's stdin. The error is a *types.Error with the
// CNI code: 6 for malformed JSON, 1 for an unsupported cniVersion, 7 for anything else wrong
// with the config; its message names the field.
func ParseConfig(stdin []byte) (*Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(stdin))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, decodeError(err)
	}
	if dec.More() {
		return nil, types.NewError(types.ErrDecodingFailure, "decode config: trailing data after the JSON object", "")
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.setDefaults()
	if c.RawPrevResult != nil {
		conf := types.PluginConf{CNIVersion: c.CNIVersion, RawPrevResult: c.RawPrevResult}
		if err := version.ParsePrevResult(&conf); err != nil {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, "prevResult: "+err.Error(), "")
		}
		c.PrevResult = conf.PrevResult
	}
	if len(c.ValidAttachments) == 0 {
		c.ValidAttachments = c.LegacyAttachments
	}
	return &c, nil
}

func decodeError(err error) *types.Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return types.NewError(types.ErrDecodingFailure, "decode config: "+err.Error(), "")
	case errors.As(err, &typ):
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("config field %q: %v", typ.Field, err), "")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return types.NewError(types.ErrInvalidNetworkConfig, "config: "+strings.TrimPrefix(err.Error(), "json: "), "")
	}
	return types.NewError(types.ErrInvalidNetworkConfig, "decode config: "+err.Error(), "")
}

func invalid(field, format string, a ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, field+": "+fmt.Sprintf(format, a...), "")
}

func (c *Config) validate() *types.Error {
	if c.CNIVersion == "" {
		return types.NewError(types.ErrIncompatibleCNIVersion, "cniVersion: missing", "")
	}
	if !slices.Contains(SupportedVersions, c.CNIVersion) {
		return types.NewError(types.ErrIncompatibleCNIVersion,
			fmt.Sprintf("cniVersion: %q is not supported (supported: %s)", c.CNIVersion, strings.Join(SupportedVersions, ", ")), "")
	}
	if c.Name == "" {
		return invalid("name", "missing")
	}
	if err := utils.ValidateNetworkName(c.Name); err != nil {
		return invalid("name", "%s", err.Msg)
	}
	if c.Type == "" {
		return invalid("type", "missing")
	}
	if c.Socket != "" && !filepath.IsAbs(c.Socket) {
		return invalid("socket", "%q is not an absolute path", c.Socket)
	}
	if c.LogFile != "" && !filepath.IsAbs(c.LogFile) {
		return invalid("logFile", "%q is not an absolute path", c.LogFile)
	}
	if c.LogLevel < 0 || c.LogLevel > 10 {
		return invalid("logLevel", "%d is not in 0..10", c.LogLevel)
	}
	if b := c.Launch.ProxierBinary; b != "" && !filepath.IsAbs(b) && strings.ContainsRune(b, '/') {
		return invalid("launch.proxierBinary", "%q must be a file name or an absolute path", b)
	}
	if p := c.Launch.ConfigPath; p != "" && !filepath.IsAbs(p) {
		return invalid("launch.configPath", "%q is not an absolute path", p)
	}
	if p := c.Launch.LogFile; p != "" && !filepath.IsAbs(p) {
		return invalid("launch.logFile", "%q is not an absolute path", p)
	}
	for _, t := range []struct {
		field string
		d     Duration
	}{{"timeouts.api", c.Timeouts.API}, {"timeouts.launch", c.Timeouts.Launch}} {
		if t.d < 0 || time.Duration(t.d) > maxTimeout {
			return invalid(t.field, "%v is not in 0..%v", time.Duration(t.d), maxTimeout)
		}
	}
	for i, a := range append(slices.Clone(c.ValidAttachments), c.LegacyAttachments...) {
		if err := (nodeapi.Attachment{ContainerID: a.ContainerID, IfName: a.IfName}).Validate(); err != nil {
			return invalid(fmt.Sprintf("cni.dev/valid-attachments[%d]", i), "%v", err)
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Socket == "" {
		c.Socket = nodeapi.DefaultSocket
	}
	if c.Launch.ProxierBinary == "" {
		c.Launch.ProxierBinary = DefaultProxierBinary
	}
	if c.Timeouts.API == 0 {
		c.Timeouts.API = Duration(DefaultAPITimeout)
	}
	if c.Timeouts.Launch == 0 {
		c.Timeouts.Launch = Duration(DefaultLaunchTimeout)
	}
}
