// Package storetest provides Fake, an in-memory store.Store with the disk store's semantics
// (ErrReserved, ErrNotReserved, torn records reclaimed on Reserve), plus failure injection.
package storetest

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/kubevs/kubevs/ipam/store"
)

// Fake is an in-memory store. Its lock is a real mutex, so concurrent users serialize as they
// would on disk.
type Fake struct {
	lock sync.Mutex

	mu      sync.Mutex
	entries map[netip.Addr]store.Entry
	last    map[string]netip.Addr
	locked  bool
	// unsynced counts Reserve and Release calls not yet followed by Sync.
	unsynced int
	// FailReserve, when set, is returned by the next Reserve of that address.
	FailReserve map[netip.Addr]error
}

var _ store.Store = (*Fake)(nil)

// NewFake returns an empty store.
func NewFake() *Fake {
	return &Fake{entries: map[netip.Addr]store.Entry{}, last: map[string]netip.Addr{}, FailReserve: map[netip.Addr]error{}}
}

// Lock implements store.Store.
func (f *Fake) Lock() error {
	f.lock.Lock()
	f.mu.Lock()
	f.locked = true
	f.mu.Unlock()
	return nil
}

// Unlock implements store.Store.
func (f *Fake) Unlock() error {
	f.mu.Lock()
	if !f.locked {
		f.mu.Unlock()
		return errors.New("unlock of an unlocked store")
	}
	f.locked = false
	f.mu.Unlock()
	f.lock.Unlock()
	return nil
}

// checkLocked reports a caller that forgot the lock, as the contract requires it.
func (f *Fake) checkLocked(op string) error {
	if !f.locked {
		return fmt.Errorf("%s without the store lock", op)
	}
	return nil
}

// Reserve implements store.Store.
func (f *Fake) Reserve(ip netip.Addr, o store.Owner) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked("reserve"); err != nil {
		return err
	}
	if err := store.ValidateOwner(o); err != nil {
		return err
	}
	if err, ok := f.FailReserve[ip]; ok {
		delete(f.FailReserve, ip)
		return err
	}
	if e, ok := f.entries[ip]; ok && !e.Corrupt {
		return fmt.Errorf("reserve %s: %w", ip, store.ErrReserved)
	}
	f.entries[ip] = store.Entry{IP: ip, Owner: o}
	f.unsynced++
	return nil
}

// Sync implements store.Store.
func (f *Fake) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked("sync"); err != nil {
		return err
	}
	f.unsynced = 0
	return nil
}

// Unsynced returns how many Reserve and Release calls have not been made durable by a Sync:
// a caller that reports success with a non-zero count could lose them in a crash.
func (f *Fake) Unsynced() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unsynced
}

// Release implements store.Store.
func (f *Fake) Release(ip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked("release"); err != nil {
		return err
	}
	if _, ok := f.entries[ip]; !ok {
		return fmt.Errorf("release %s: %w", ip, store.ErrNotReserved)
	}
	delete(f.entries, ip)
	f.unsynced++
	return nil
}

// List implements store.Store.
func (f *Fake) List() ([]store.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked("list"); err != nil {
		return nil, err
	}
	out := make([]store.Entry, 0, len(f.entries))
	for _, e := range f.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b store.Entry) int { return a.IP.Compare(b.IP) })
	return out, nil
}

// LastReserved implements store.Store.
func (f *Fake) LastReserved(key string) (netip.Addr, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked("read last reserved"); err != nil {
		return netip.Addr{}, false, err
	}
	ip, ok := f.last[key]
	return ip, ok, nil
}

// SetLastReserved implements store.Store.
func (f *Fake) SetLastReserved(key string, ip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked("record last reserved"); err != nil {
		return err
	}
	f.last[key] = ip
	return nil
}

// Close implements store.Store.
func (f *Fake) Close() error { return nil }

// Corrupt plants a torn record at ip, as a crash in the middle of Reserve leaves on disk.
func (f *Fake) Corrupt(ip netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries[ip] = store.Entry{IP: ip, Corrupt: true}
}

// Dump returns the reservations as "ip owner" lines (torn ones as "ip <torn>"), sorted.
func (f *Fake) Dump() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.entries {
		if e.Corrupt {
			out = append(out, e.IP.String()+" <torn>")
		} else {
			out = append(out, e.IP.String()+" "+e.Owner.String())
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		pa, _ := netip.ParseAddr(a[:indexSpace(a)])
		pb, _ := netip.ParseAddr(b[:indexSpace(b)])
		return pa.Compare(pb)
	})
	return out
}

func indexSpace(s string) int {
	for i, r := range s {
		if r == ' ' {
			return i
		}
	}
	return len(s)
}
