package conflist

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/kubevs/kubevs/install/atomicfile"
)

// ErrNoNetwork is returned by FindExisting when the directory holds no network configuration
// besides kubevs's own.
var ErrNoNetwork = errors.New("no CNI network configuration to chain into")

// StandaloneOptions shape a standalone conflist.
type StandaloneOptions struct {
	// Name is the network name. Default: DefaultNetworkName.
	Name string
	// CNIVersion is the declared version. Default: DefaultCNIVersion.
	CNIVersion string
	// Bridge is the Linux bridge the pods attach to. Default: DefaultBridge.
	Bridge string
	// MTU of the bridge and veths; zero lets the bridge plugin choose.
	MTU int
	// IPAM is the kubevs-ipam stanza (Type is set to IPAMType).
	IPAM IPAMConf
	// Plugin is the kubevs stanza (Type is set to PluginType).
	Plugin PluginConf
}

// bridgeEntry is the reference bridge plugin's stanza. hairpinMode is deliberately absent:
// the kubevs plugin turns hairpin on for each pod port itself, after the bridge plugin ran.
type bridgeEntry struct {
	Type      string   `json:"type"`
	Bridge    string   `json:"bridge"`
	IsGateway bool     `json:"isGateway"`
	IPMasq    bool     `json:"ipMasq"`
	MTU       int      `json:"mtu,omitempty"`
	IPAM      IPAMConf `json:"ipam"`
}

type portmapEntry struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
}

// Standalone returns the conflist of a node with no other network: the reference bridge
// plugin with kubevs-ipam (the bridge is the pods' gateway, no masquerade: the proxier
// decides what to masquerade), portmap for hostPorts, and kubevs last.
func Standalone(o StandaloneOptions) (*List, error) {
	if o.Name == "" {
		o.Name = DefaultNetworkName
	}
	if o.CNIVersion == "" {
		o.CNIVersion = DefaultCNIVersion
	}
	if o.Bridge == "" {
		o.Bridge = DefaultBridge
	}
	o.IPAM.Type = IPAMType
	ipam := o.IPAM
	ipam.SetDefaults()
	if err := ipam.Validate(); err != nil {
		return nil, fmt.Errorf("standalone conflist: ipam: %w", err)
	}
	bridge, err := json.Marshal(bridgeEntry{Type: "bridge", Bridge: o.Bridge, IsGateway: true, MTU: o.MTU, IPAM: o.IPAM})
	if err != nil {
		return nil, fmt.Errorf("encode bridge entry: %w", err)
	}
	portmap, err := json.Marshal(portmapEntry{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}})
	if err != nil {
		return nil, fmt.Errorf("encode portmap entry: %w", err)
	}
	kubevs, err := pluginEntry(o.Plugin)
	if err != nil {
		return nil, err
	}
	return &List{CNIVersion: o.CNIVersion, Name: o.Name, Plugins: []json.RawMessage{bridge, portmap, kubevs}, Extra: map[string]json.RawMessage{}}, nil
}

func pluginEntry(p PluginConf) (json.RawMessage, error) {
	p.Type = PluginType
	d := p
	d.SetDefaults()
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("kubevs plugin entry: %w", err)
	}
	return p.Entry()
}

// Chain returns a copy of existing with every older kubevs entry removed and kubevs appended
// last. The list's name, cniVersion, other top-level fields and other plugins are kept
// verbatim.
func Chain(existing *List, plugin PluginConf) (*List, error) {
	switch existing.CNIVersion {
	case "", "0.1.0", "0.2.0":
		return nil, fmt.Errorf("chain into network %s: cniVersion %q predates chained plugins (0.3.0)", existing.Name, existing.CNIVersion)
	}
	kubevs, err := pluginEntry(plugin)
	if err != nil {
		return nil, err
	}
	out := &List{CNIVersion: existing.CNIVersion, Name: existing.Name, Extra: map[string]json.RawMessage{}}
	for k, v := range existing.Extra {
		out.Extra[k] = v
	}
	for _, p := range existing.Plugins {
		if t, _ := pluginType(p); t == PluginType {
			continue
		}
		out.Plugins = append(out.Plugins, p)
	}
	out.Plugins = append(out.Plugins, kubevs)
	return out, nil
}

// FindExisting returns the path of the configuration file a runtime loads from dir today,
// ignoring ours (the base name kubevs writes): like libcni, containerd and CRI-O, the
// lexically first regular file ending in .conf, .conflist or .json. ErrNoNetwork if none.
func FindExisting(dir, ours string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("read CNI configuration directory %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() == ours || !IsConfigName(e.Name()) || atomicfile.IsTemp(e.Name()) {
			continue
		}
		if !e.Type().IsRegular() && e.Type()&os.ModeSymlink == 0 {
			continue
		}
		names = append(names, e.Name())
	}
	if len(names) == 0 {
		return "", fmt.Errorf("%s: %w", dir, ErrNoNetwork)
	}
	sort.Strings(names)
	return filepath.Join(dir, names[0]), nil
}

// CheckFirst returns an error unless ours sorts before every other configuration file in
// dir, that is unless the runtime will load it.
func CheckFirst(dir, ours string) error {
	first, err := FindExisting(dir, ours)
	if errors.Is(err, ErrNoNetwork) {
		return nil
	}
	if err != nil {
		return err
	}
	if filepath.Base(first) < ours {
		return fmt.Errorf("%s sorts before %s in %s: the runtime would load it instead; choose a name that sorts first", filepath.Base(first), ours, dir)
	}
	return nil
}

// Write atomically writes l to path (mode 0644): see package atomicfile.
func Write(path string, l *List) error {
	b, err := l.Marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b, atomicfile.Options{Mode: 0o644}); err != nil {
		return fmt.Errorf("write conflist: %w", err)
	}
	return nil
}
