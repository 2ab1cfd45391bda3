package sysctl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// procfs reads and writes the files under a /proc/sys tree.
//
// Parameters under net/ belong to the network namespace of the thread that opens the file,
// so a caller that wants another namespace's values must open them from a thread locked into
// it (ns.Do), which is how the tests use it.
type procfs struct {
	root string
}

var _ Interface = (*procfs)(nil)

// New returns the kernel's parameters, read and written through /proc/sys. It is safe for
// concurrent use.
func New() Interface { return NewAt("/proc/sys") }

// NewAt returns parameters stored as files under root, the layout of /proc/sys; tests use a
// temporary directory.
func NewAt(root string) Interface { return &procfs{root: root} }

// Path turns a dotted ("net.ipv4.ip_forward") or slashed ("net/ipv4/ip_forward") name into
// its slashed form, the path below /proc/sys. A name containing a slash is taken as slashed,
// so its components may hold dots (interface names such as eth0.100); otherwise every dot
// separates components. Only lowercase letters, digits, '_', '-', '.' and '/' are allowed, and
// no component may be empty, "." or "..".
func Path(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty sysctl name")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("_-./", c)) {
			return "", fmt.Errorf("sysctl name %q: character %q not allowed", name, c)
		}
	}
	p := name
	if !strings.Contains(name, "/") {
		p = strings.ReplaceAll(name, ".", "/")
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("sysctl name %q: empty, . or .. component", name)
		}
	}
	return p, nil
}

// Get returns the parameter's value without its trailing newline. An absent parameter is an
// error matching fs.ErrNotExist.
func (p *procfs) Get(name string) (string, error) {
	rel, err := Path(name)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(p.root, rel))
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", rel, err)
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// Set writes value to the parameter. It never creates a parameter: an absent one (a module
// not loaded, a namespace without it) is an error matching fs.ErrNotExist.
func (p *procfs) Set(name, value string) error {
	rel, err := Path(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(p.root, rel), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("set sysctl %s: %w", rel, err)
	}
	_, werr := f.WriteString(value + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("set sysctl %s to %q: %w", rel, value, err)
	}
	return nil
}
