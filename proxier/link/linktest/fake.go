// Package linktest holds an in-memory link.Interface with the kernel's semantics, for tests of
// code that manages kubevs's dummy interface and its addresses.
//
// Adding an address twice fails with link.ErrExist; deleting or listing what is absent fails
// with link.ErrNotFound; deleting the link drops its addresses. The fake records the calls it
// receives (Ops), can fail the next call of an operation (FailNext, SetHook), and prints its
// content as stable text (Dump).
package linktest

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/link"
)

// Operation names, used in Ops, FailNext and hooks.
const (
	OpEnsureDummy   = "ensure-dummy"
	OpDeleteDummy   = "delete-dummy"
	OpAddresses     = "list-addr"
	OpAddAddress    = "add-addr"
	OpDeleteAddress = "delete-addr"
)

// Hook is called before every operation with its name and target (the text Ops records after
// the name). A non-nil error fails the call without changing anything.
type Hook = kfake.Hook

type fakeLink struct {
	dummy bool
	up    bool
	addrs map[netip.Addr]bool
}

// Fake is an in-memory link.Interface; create it with NewFake. It is safe for concurrent use.
//
// Its Log records the writes (ensure, add, delete) issued since the last ResetOps, one line
// each, such as "add-addr kube-ipvs0 10.96.0.1"; a failed one ends in ": <error>". Calls
// counts reads too. FailNext and SetHook fail a call without changing anything.
type Fake struct {
	*kfake.Log
	rec   *kfake.Recorder
	mu    sync.Mutex
	links map[string]*fakeLink
}

var (
	_ link.Interface    = (*Fake)(nil)
	_ link.AddressAdder = (*Fake)(nil)
)

// NewFake returns a host without links.
func NewFake() *Fake {
	log, rec := kfake.New(kfake.MarkError)
	return &Fake{Log: log, rec: rec, links: map[string]*fakeLink{}}
}

// AddForeignLink adds a link that is not a dummy (an eth0, a bridge), so tests can check
// that kubevs refuses to adopt it. It is not recorded as an operation.
func (f *Fake) AddForeignLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[name] = &fakeLink{up: true, addrs: map[netip.Addr]bool{}}
}

// SetDown sets a link down the way someone else's `ip link set NAME down` does; it is not
// recorded as an operation. A link that does not exist is link.ErrNotFound.
func (f *Fake) SetDown(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[name]
	if !ok {
		return fmt.Errorf("set link %s down: %w", name, link.ErrNotFound)
	}
	l.up = false
	return nil
}

// Remove deletes a link and its addresses the way someone else's `ip link del NAME` does;
// it is not recorded as an operation. A link that does not exist is link.ErrNotFound.
func (f *Fake) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.links[name]; !ok {
		return fmt.Errorf("delete link %s: %w", name, link.ErrNotFound)
	}
	delete(f.links, name)
	return nil
}

// RemoveAddress unbinds an address the way someone else's `ip addr del` does; it is not
// recorded as an operation. An absent link or address is link.ErrNotFound.
func (f *Fake) RemoveAddress(name string, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[name]
	if !ok || !l.addrs[addr] {
		return fmt.Errorf("delete address %s from %s: %w", addr, name, link.ErrNotFound)
	}
	delete(l.addrs, addr)
	return nil
}

// InjectAddress binds an address the way someone else's `ip addr add` does; it is not
// recorded as an operation. An absent link is link.ErrNotFound.
func (f *Fake) InjectAddress(name string, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[name]
	if !ok {
		return fmt.Errorf("add address %s to %s: %w", addr, name, link.ErrNotFound)
	}
	l.addrs[addr] = true
	return nil
}

// Dump prints links sorted by name, each with its kind, state and sorted addresses.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(f.links)) {
		l := f.links[n]
		kind, state := "other", "down"
		if l.dummy {
			kind = "dummy"
		}
		if l.up {
			state = "up"
		}
		fmt.Fprintf(&b, "%s %s %s\n", n, kind, state)
		for _, a := range sortedAddrs(l.addrs) {
			fmt.Fprintf(&b, "  %s/%d\n", a, a.BitLen())
		}
	}
	return b.String()
}

// do runs the bookkeeping every call shares and then fn, with f.mu held.
func (f *Fake) do(op, target string, write bool, fn func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(op, target, write)
	if err != nil {
		return err
	}
	return c.Done(fn())
}

// EnsureDummy creates the dummy link if absent and sets it up; a non-dummy link of that name
// is an error matching link.ErrNotDummy.
func (f *Fake) EnsureDummy(name string) error {
	return f.do(OpEnsureDummy, name, true, func() error {
		l, ok := f.links[name]
		switch {
		case !ok:
			f.links[name] = &fakeLink{dummy: true, up: true, addrs: map[netip.Addr]bool{}}
		case !l.dummy:
			return fmt.Errorf("ensure dummy link %s: %w", name, link.ErrNotDummy)
		default:
			l.up = true
		}
		return nil
	})
}

// DeleteDummy removes the link and its addresses; link.ErrNotFound if absent.
func (f *Fake) DeleteDummy(name string) error {
	return f.do(OpDeleteDummy, name, true, func() error {
		l, ok := f.links[name]
		if !ok {
			return fmt.Errorf("delete link %s: %w", name, link.ErrNotFound)
		}
		if !l.dummy {
			return fmt.Errorf("delete link %s: %w", name, link.ErrNotDummy)
		}
		delete(f.links, name)
		return nil
	})
}

// Addresses lists the link's addresses, sorted; link.ErrNotFound if the link is absent.
func (f *Fake) Addresses(name string) ([]netip.Addr, error) {
	var out []netip.Addr
	err := f.do(OpAddresses, name, false, func() error {
		l, ok := f.links[name]
		if !ok {
			return fmt.Errorf("list addresses of %s: %w", name, link.ErrNotFound)
		}
		out = sortedAddrs(l.addrs)
		return nil
	})
	return out, err
}

// AddAddresses binds each of addrs, one AddAddress each (recorded and failed one by one, as
// the kernel acknowledges each message of a batch).
func (f *Fake) AddAddresses(name string, addrs []netip.Addr) []error {
	errs := make([]error, len(addrs))
	for i, a := range addrs {
		errs[i] = f.AddAddress(name, a)
	}
	return errs
}

// AddAddress binds addr; link.ErrExist if bound, link.ErrNotFound if the link is absent.
func (f *Fake) AddAddress(name string, addr netip.Addr) error {
	addr = addr.Unmap()
	return f.do(OpAddAddress, name+" "+addr.String(), true, func() error {
		l, ok := f.links[name]
		switch {
		case !addr.IsValid():
			return fmt.Errorf("add address to %s: invalid address", name)
		case !ok:
			return fmt.Errorf("add address %s to %s: link %w", addr, name, link.ErrNotFound)
		case l.addrs[addr]:
			return fmt.Errorf("add address %s to %s: %w", addr, name, link.ErrExist)
		}
		l.addrs[addr] = true
		return nil
	})
}

// DeleteAddress unbinds addr; link.ErrNotFound if it or the link is absent.
func (f *Fake) DeleteAddress(name string, addr netip.Addr) error {
	addr = addr.Unmap()
	return f.do(OpDeleteAddress, name+" "+addr.String(), true, func() error {
		l, ok := f.links[name]
		if !ok {
			return fmt.Errorf("delete address %s from %s: link %w", addr, name, link.ErrNotFound)
		}
		if !l.addrs[addr] {
			return fmt.Errorf("delete address %s from %s: %w", addr, name, link.ErrNotFound)
		}
		delete(l.addrs, addr)
		return nil
	})
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
