package ipam

// Allocation rules:
//   - In each range the first address after the network address is the gateway (the bridge
//     holds it) and is never handed out; neither is the network address, nor in IPv4 the
//     broadcast address.
//   - The search starts just after the address last handed out in that family and wraps
//     around, so a freed address is reused only after every other free one (round robin):
//     a late packet for a deleted pod does not reach its successor.
//   - An allocation over several ranges (dual-stack) is all or nothing.

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"

	"github.com/kubevs/kubevs/ipam/store"
)

// ErrExhausted is wrapped by the error Allocate returns when a range has no free address.
var ErrExhausted = errors.New("range exhausted")

// ErrDuplicate is wrapped by the error Allocate returns when the owner already holds addresses.
var ErrDuplicate = errors.New("duplicate allocation")

// Allocation is one address handed out, with the range it came from and that range's gateway.
type Allocation struct {
	Range   netip.Prefix
	IP      netip.Addr
	Gateway netip.Addr
}

// Gateway returns the gateway address of p: the first address after the network address.
func Gateway(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// usable returns the first and last address that may be handed out in p.
func usable(p netip.Prefix) (first, last netip.Addr) {
	first = Gateway(p).Next()
	last = lastAddr(p)
	if p.Addr().Is4() {
		last = last.Prev() // the broadcast address
	}
	return first, last
}

// Size returns how many addresses of p may be handed out.
func Size(p netip.Prefix) *big.Int {
	n := new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()))
	reservedCount := int64(2) // network, gateway
	if p.Addr().Is4() {
		reservedCount = 3 // and broadcast
	}
	return n.Sub(n, big.NewInt(reservedCount))
}

func familyKey(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

func inUsable(p netip.Prefix, ip netip.Addr) bool {
	first, last := usable(p)
	return p.Contains(ip) && ip.Compare(first) >= 0 && ip.Compare(last) <= 0
}

// Allocate hands o one address from each range, under the store's lock. It fails with
// ErrDuplicate if o already holds an address (a repeated ADD), and with ErrExhausted naming
// the range when one is full; on failure nothing stays reserved.
func Allocate(s store.Store, o store.Owner, ranges []netip.Prefix) (out []Allocation, err error) {
	if err := store.ValidateOwner(o); err != nil {
		return nil, err
	}
	if len(ranges) == 0 {
		return nil, errors.New("allocate: no range to allocate from")
	}
	if err := s.Lock(); err != nil {
		return nil, err
	}
	defer func() {
		if uerr := s.Unlock(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	entries, err := s.List()
	if err != nil {
		return nil, err
	}
	var held []netip.Addr
	reserved := map[netip.Addr]bool{}
	for _, e := range entries {
		if e.Corrupt {
			continue // a torn record never blocks allocation (see package store)
		}
		reserved[e.IP] = true
		if e.Owner == o {
			held = append(held, e.IP)
		}
	}
	if len(held) > 0 {
		return nil, fmt.Errorf("container %s interface %s already holds %v: %w (a repeated ADD needs a DEL first)", o.ContainerID, o.IfName, held, ErrDuplicate)
	}
	defer func() {
		if err != nil {
			for _, a := range out {
				_ = s.Release(a.IP)
			}
			_ = s.Sync()
			out = nil
		}
	}()
	for _, p := range ranges {
		ip, err := allocateIn(s, o, p.Masked(), reserved)
		if err != nil {
			return out, err
		}
		out = append(out, Allocation{Range: p.Masked(), IP: ip, Gateway: Gateway(p)})
	}
	for _, a := range out {
		if err := s.SetLastReserved(familyKey(a.Range), a.IP); err != nil {
			return out, err
		}
	}
	if err := s.Sync(); err != nil {
		return out, err
	}
	return out, nil
}

func allocateIn(s store.Store, o store.Owner, p netip.Prefix, reserved map[netip.Addr]bool) (netip.Addr, error) {
	if err := checkRange(p); err != nil {
		return netip.Addr{}, err
	}
	size := Size(p)
	first, last := usable(p)
	taken := 0
	for ip := range reserved {
		if p.Contains(ip) && ip.Compare(first) >= 0 && ip.Compare(last) <= 0 {
			taken++
		}
	}
	exhausted := fmt.Errorf("no free address in range %s: all %s usable addresses are reserved: %w", p, size, ErrExhausted)
	if big.NewInt(int64(taken)).Cmp(size) >= 0 {
		return netip.Addr{}, exhausted
	}
	start := first
	if prev, ok, err := s.LastReserved(familyKey(p)); err != nil {
		return netip.Addr{}, err
	} else if ok && inUsable(p, prev) && prev != last {
		start = prev.Next()
	}
	// At most taken+1 candidates are examined: more than taken of them cannot all be reserved.
	cand := start
	for {
		if !reserved[cand] {
			err := s.Reserve(cand, o)
			if err == nil {
				reserved[cand] = true
				return cand, nil
			}
			if !errors.Is(err, store.ErrReserved) {
				return netip.Addr{}, fmt.Errorf("allocate from %s: %w", p, err)
			}
			reserved[cand] = true
		}
		if cand == last {
			cand = first
		} else {
			cand = cand.Next()
		}
		if cand == start {
			return netip.Addr{}, exhausted
		}
	}
}

func checkRange(p netip.Prefix) error {
	if !p.IsValid() || p.Addr().BitLen()-p.Bits() < 2 {
		return fmt.Errorf("range %s: too small for a gateway and a pod", p)
	}
	return nil
}

// Release frees every address o holds (its valid reservations), under the store's lock. It is
// idempotent: an owner with no address is not an error.
func Release(s store.Store, o store.Owner) (released []netip.Addr, err error) {
	err = withLock(s, func() error {
		entries, err := s.List()
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Corrupt || e.Owner != o {
				continue
			}
			if err := s.Release(e.IP); err != nil && !errors.Is(err, store.ErrNotReserved) {
				return err
			}
			released = append(released, e.IP)
		}
		if len(released) == 0 {
			return nil
		}
		return s.Sync()
	})
	return released, err
}

// Lookup returns the addresses o holds.
func Lookup(s store.Store, o store.Owner) (held []netip.Addr, err error) {
	err = withLock(s, func() error {
		entries, err := s.List()
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !e.Corrupt && e.Owner == o {
				held = append(held, e.IP)
			}
		}
		return nil
	})
	return held, err
}

// GC releases every reservation whose owner is not in valid, and every torn record (safe
// under the lock, see package store). It returns what it released.
func GC(s store.Store, valid []store.Owner) (released []store.Entry, err error) {
	err = withLock(s, func() error {
		entries, err := s.List()
		if err != nil {
			return err
		}
		var errs []error
		for _, e := range entries {
			if !e.Corrupt && slices.Contains(valid, e.Owner) {
				continue
			}
			if err := s.Release(e.IP); err != nil && !errors.Is(err, store.ErrNotReserved) {
				errs = append(errs, err)
				continue
			}
			released = append(released, e)
		}
		if len(released) > 0 {
			errs = append(errs, s.Sync())
		}
		return errors.Join(errs...)
	})
	return released, err
}

func withLock(s store.Store, fn func() error) (err error) {
	if err := s.Lock(); err != nil {
		return err
	}
	defer func() {
		if uerr := s.Unlock(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	return fn()
}
