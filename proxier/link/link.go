// Package link owns the dummy interface that holds kubevs's virtual IPs (kube-ipvs0) and the
// addresses on it. The Linux implementation uses netlink; linktest holds an in-memory fake.
package link

import (
	"errors"
	"net/netip"
)

// DefaultDummy is the interface kube-proxy's IPVS mode also uses; never change it, tools and
// operators look for it by this name.
const DefaultDummy = "kube-ipvs0"

// Interface manages one kind of object: a dummy link kubevs owns and its addresses.
type Interface interface {
	// EnsureDummy creates the dummy link if absent and sets it up; it is idempotent. A link of
	// that name that is not a dummy is an error, never replaced.
	EnsureDummy(name string) error
	// DeleteDummy removes the link; ErrNotFound if absent.
	DeleteDummy(name string) error
	// Addresses lists the addresses on the link (host prefixes); ErrNotFound if absent.
	Addresses(name string) ([]netip.Addr, error)
	// AddAddress binds addr as a /32 or /128; ErrExist if it is already bound.
	AddAddress(name string, addr netip.Addr) error
	// DeleteAddress unbinds addr; ErrNotFound if it is not bound.
	DeleteAddress(name string, addr netip.Addr) error
}

// AddressAdder binds several addresses to one link at once. The Linux implementation and
// the fake implement it beside Interface.
type AddressAdder interface {
	// AddAddresses binds each of addrs as AddAddress would; errs[i] is addrs[i]'s outcome.
	AddAddresses(name string, addrs []netip.Addr) (errs []error)
}

// Sentinel errors; implementations wrap them so errors.Is works.
var (
	ErrExist    = errors.New("already exists")
	ErrNotFound = errors.New("not found")
)
