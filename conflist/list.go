package conflist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// List is a network configuration list as a runtime loads it. Its plugin entries and every
// top-level field other than name and cniVersion are kept as the raw JSON they were read as,
// so rewriting a list never changes a value kubevs does not own (unknown fields, number
// precision, key order inside a plugin).
type List struct {
	// CNIVersion and Name are the list's cniVersion and name.
	CNIVersion string
	Name       string
	// Plugins are the plugin entries, in order, verbatim.
	Plugins []json.RawMessage
	// Extra holds every other top-level field verbatim (disableCheck, cniVersions, ...).
	Extra map[string]json.RawMessage
}

// maxConfigSize bounds what Parse accepts; real configuration files are a few KiB.
const maxConfigSize = 1 << 20

// Parse reads a configuration file's content the way libcni does for its extension: a
// .conflist is a list; a .conf or .json is one plugin, which becomes a list of one with the
// plugin's name and cniVersion. Duplicate keys, a missing name, or a plugin without a
// string "type" are errors.
func Parse(data []byte, fileName string) (*List, error) {
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("parse %s: larger than %d bytes", fileName, maxConfigSize)
	}
	var l *List
	var err error
	switch filepath.Ext(fileName) {
	case ".conflist":
		l, err = parseList(data)
	case ".conf", ".json":
		l, err = parseSingle(data)
	default:
		err = fmt.Errorf("not a CNI configuration file name (want one of %v)", Extensions)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", fileName, err)
	}
	return l, nil
}

func parseList(data []byte) (*List, error) {
	var top map[string]json.RawMessage
	if err := DecodeStrict(data, &top); err != nil {
		return nil, err
	}
	if top == nil {
		return nil, errors.New("not a JSON object")
	}
	l := &List{Extra: map[string]json.RawMessage{}}
	for k, v := range top {
		var err error
		switch k {
		case "cniVersion":
			err = json.Unmarshal(v, &l.CNIVersion)
		case "name":
			err = json.Unmarshal(v, &l.Name)
		case "plugins":
			err = json.Unmarshal(v, &l.Plugins)
		default:
			l.Extra[k] = compact(v)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if l.Name == "" {
		return nil, errors.New("name is missing or empty")
	}
	if len(l.Plugins) == 0 {
		return nil, errors.New("plugins is missing or empty")
	}
	for i, p := range l.Plugins {
		if _, err := pluginType(p); err != nil {
			return nil, fmt.Errorf("plugins[%d]: %w", i, err)
		}
		l.Plugins[i] = compact(p)
	}
	return l, nil
}

func parseSingle(data []byte) (*List, error) {
	raw, err := rawObject(data)
	if err != nil {
		return nil, err
	}
	if _, err := pluginType(raw); err != nil {
		return nil, err
	}
	var hdr struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
	}
	if err := json.Unmarshal(raw, &hdr); err != nil {
		return nil, err
	}
	if hdr.Name == "" {
		return nil, errors.New("name is missing or empty")
	}
	return &List{CNIVersion: hdr.CNIVersion, Name: hdr.Name, Plugins: []json.RawMessage{compact(raw)}, Extra: map[string]json.RawMessage{}}, nil
}

// pluginType returns the "type" of a plugin entry, which must be a JSON object.
func pluginType(p json.RawMessage) (string, error) {
	var m map[string]json.RawMessage
	if err := DecodeStrict(p, &m); err != nil {
		return "", err
	}
	if m == nil {
		return "", errors.New("not a JSON object")
	}
	var t string
	if err := json.Unmarshal(m["type"], &t); err != nil || t == "" {
		return "", errors.New("type is missing or not a non-empty string")
	}
	return t, nil
}

func compact(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return slices.Clone(b)
	}
	return buf.Bytes()
}

// Types returns the "type" of every plugin, in order.
func (l *List) Types() []string {
	out := make([]string, len(l.Plugins))
	for i, p := range l.Plugins {
		out[i], _ = pluginType(p)
	}
	return out
}

// Marshal encodes l as an indented .conflist: cniVersion, name, the other top-level fields
// sorted by key, then plugins. The output ends with a newline.
func (l *List) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	field := func(k string, v []byte) {
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(v)
		buf.WriteByte(',')
	}
	if l.CNIVersion != "" {
		v, _ := json.Marshal(l.CNIVersion)
		field("cniVersion", v)
	}
	v, _ := json.Marshal(l.Name)
	field("name", v)
	keys := make([]string, 0, len(l.Extra))
	for k := range l.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field(k, l.Extra[k])
	}
	buf.WriteString(`"plugins":[`)
	for i, p := range l.Plugins {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(p)
	}
	buf.WriteString("]}")
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("encode conflist %s: %w", l.Name, err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Read reads and parses the configuration file at path.
func Read(path string) (*List, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return Parse(data, filepath.Base(path))
}
