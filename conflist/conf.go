// Package conflist owns the CNI configuration kubevs reads and writes: the stanza of the
// `kubevs` chained plugin (PluginConf), the `kubevs-ipam` stanza (IPAMConf), both decoded
// strictly, and the node's network configuration list (List): read it as a runtime would,
// generate it standalone (bridge + kubevs-ipam, portmap, kubevs) or chain kubevs into the
// network already on the node, and write it atomically.
package conflist

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	sigsjson "sigs.k8s.io/json"
)

// Names kubevs owns. Never change these: installed nodes and running plugins depend on them.
const (
	// PluginType is the "type" of the kubevs chained plugin (its binary name).
	PluginType = "kubevs"
	// IPAMType is the "type" of the kubevs IPAM plugin (its binary name).
	IPAMType = "kubevs-ipam"
	// DefaultFileName is the name of the conflist kubevs writes. It sorts before the names
	// network add-ons use (10-flannel.conflist, 10-calico.conflist, 05-cilium.conflist), so
	// the runtime, which loads the lexically first file, loads it.
	DefaultFileName = "00-kubevs.conflist"
	// DefaultNetworkName is the network name of a standalone kubevs conflist.
	DefaultNetworkName = "kubevs"
	// DefaultCNIVersion is the version a standalone conflist declares (1.1.0: GC and STATUS).
	DefaultCNIVersion = "1.1.0"
	// DefaultBridge is the bridge a standalone conflist asks the bridge plugin for.
	DefaultBridge = "kubevs0"
)

// Extensions are the configuration file extensions CNI runtimes (libcni, containerd,
// CRI-O) load, in the meaning libcni gives them: .conflist is a list, the others one plugin.
var Extensions = []string{".conf", ".conflist", ".json"}

// IsConfigName reports whether a runtime would load a file with this name.
func IsConfigName(name string) bool {
	ext := filepath.Ext(name)
	for _, e := range Extensions {
		if ext == e {
			return true
		}
	}
	return false
}

// DecodeStrict decodes the JSON object data into v, refusing unknown fields, duplicate
// fields and fields whose case differs from the declared name.
func DecodeStrict(data []byte, v any) error {
	strict, err := sigsjson.UnmarshalStrict(data, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		return errors.Join(strict...)
	}
	return nil
}

// validAbs checks that p is empty or an absolute, clean path without "..".
func validAbs(field, p string) error {
	if p == "" {
		return nil
	}
	return ValidatePath(field, p)
}

// ValidatePath checks that p is an absolute, clean path with no ".." element. Every path
// kubevs takes from a configuration or a flag goes through it.
func ValidatePath(field, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s: empty path", field)
	case !filepath.IsAbs(p):
		return fmt.Errorf("%s: %q is not an absolute path", field, p)
	case strings.Contains(p, "\x00"):
		return fmt.Errorf("%s: %q holds a NUL byte", field, p)
	case containsDotDot(p):
		return fmt.Errorf("%s: %q holds a \"..\" element", field, p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("%s: %q is not clean (want %q)", field, p, filepath.Clean(p))
	}
	return nil
}

func containsDotDot(p string) bool {
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

// rawObject checks that data is one JSON object and returns it compacted.
func rawObject(data []byte) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := DecodeStrict(data, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return json.RawMessage(data), nil
}
