// Package ipset owns kubevs's ipsets (KUBE-*) and their members, spoken over netlink: never
// one process per entry. ipsettest holds an in-memory fake with the kernel's semantics.
package ipset

import (
	"errors"
)

// Type is an ipset type.
type Type string

// The set types kubevs uses.
const (
	HashIP        Type = "hash:ip"
	HashIPPort    Type = "hash:ip,port"
	HashIPPortIP  Type = "hash:ip,port,ip"
	HashIPPortNet Type = "hash:ip,port,net"
	HashNet       Type = "hash:net"
	BitmapPort    Type = "bitmap:port"
)

// Family is the address family of a hash set.
type Family string

// Address families.
const (
	IPv4 Family = "inet"
	IPv6 Family = "inet6"
)

// Set describes one set. Comment documents it for operators (ipset list shows it).
type Set struct {
	Name    string
	Type    Type
	Family  Family // ignored for bitmap:port
	Comment string
	// PortRange bounds a bitmap:port set, e.g. 30000-32767.
	PortFrom, PortTo uint16
}

// Entry is one member written in ipset's own syntax, canonical form, for example
// "10.244.0.2,tcp:8080,10.244.0.2", "10.96.0.10,udp:53", "10.0.0.0/8", "30080".
// Canonical means what `ipset list` prints: lowercase protocol, no default /32.
type Entry string

// Interface is the kernel's set table.
type Interface interface {
	// Sets lists the names of all sets in the kernel, kubevs's or not.
	Sets() ([]string, error)
	// CreateSet creates a set; ErrExist if a set of that name exists (whatever its type).
	CreateSet(Set) error
	// DestroySet destroys a set; ErrNotFound if absent; ErrInUse if an iptables rule holds it.
	DestroySet(name string) error
	// Entries lists a set's members in canonical form; ErrNotFound if the set is absent.
	Entries(name string) ([]Entry, error)
	// Counts returns how many members each set holds, by name, from the sets' headers in
	// one dump (no member is listed).
	Counts() (map[string]int, error)
	// AddEntries adds members in one batch; members already present are not an error.
	AddEntries(name string, entries ...Entry) error
	// DeleteEntries removes members in one batch; members already absent are not an error.
	DeleteEntries(name string, entries ...Entry) error
}

// Sentinel errors; implementations wrap them so errors.Is works.
var (
	ErrExist    = errors.New("already exists")
	ErrNotFound = errors.New("not found")
	ErrInUse    = errors.New("in use")
)
