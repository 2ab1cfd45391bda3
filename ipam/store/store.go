// Package store keeps kubevs-ipam's reservations: which pod attachment (container ID,
// interface name) holds which IP. Store is the seam; Disk is the crash-safe implementation
// and storetest.Fake an in-memory one with the same semantics.
//
// Every method but Lock, Unlock and Close must be called with the lock held: allocation and
// release are read-modify-write sequences over the whole store, and the lock (a flock for
// Disk) makes them atomic across concurrent plugin processes.
package store

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Sentinel errors, modelled on the file system's EEXIST and ENOENT; use errors.Is.
var (
	// ErrReserved: Reserve found the address held by a valid reservation.
	ErrReserved = errors.New("address already reserved")
	// ErrNotReserved: Release found no reservation for the address.
	ErrNotReserved = errors.New("address not reserved")
)

// Owner is the CNI attachment an address is reserved for.
type Owner struct {
	ContainerID string
	IfName      string
}

// String prints "containerID/ifName".
func (o Owner) String() string { return o.ContainerID + "/" + o.IfName }

// Entry is one reservation. A Corrupt entry is a reservation file whose content is not a
// complete record (see Disk): it holds no owner and may be reclaimed under the lock.
type Entry struct {
	IP      netip.Addr
	Owner   Owner
	Corrupt bool
}

// Store is where reservations live.
type Store interface {
	// Lock takes the store's exclusive lock, waiting for it. It is not reentrant.
	Lock() error
	// Unlock releases the lock.
	Unlock() error
	// Reserve records ip for o. ErrReserved if ip holds a valid reservation; a corrupt
	// entry for ip is replaced. The record's content is durable when Reserve returns nil; its
	// existence once Sync returns nil.
	Reserve(ip netip.Addr, o Owner) error
	// Release removes the reservation of ip, valid or corrupt. ErrNotReserved if none. The
	// removal is durable once Sync returns nil.
	Release(ip netip.Addr) error
	// Sync makes every Reserve and Release so far durable. Callers call it once after a batch
	// (one fsync of a directory instead of one per address), before reporting success.
	Sync() error
	// List returns every reservation, sorted by address.
	List() ([]Entry, error)
	// LastReserved returns the address last handed out under key (one key per range or
	// family), and false when none is recorded.
	LastReserved(key string) (netip.Addr, bool, error)
	// SetLastReserved records ip as the last address handed out under key. It is a hint for
	// the round robin, not made durable: after a crash it may be lost, which only changes
	// which free address comes next.
	SetLastReserved(key string, ip netip.Addr) error
	// Close releases the store's resources.
	Close() error
}

// record encodes the content of a reservation: the container ID and the interface name, each
// ending in a newline. The final newline lets a reader tell a complete record from one cut
// short by a crash.
func record(o Owner) []byte { return []byte(o.ContainerID + "\n" + o.IfName + "\n") }

// parseRecord decodes a reservation's content; ok is false for anything record did not write
// in full.
func parseRecord(b []byte) (Owner, bool) {
	s := string(b)
	if !strings.HasSuffix(s, "\n") {
		return Owner{}, false
	}
	parts := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return Owner{}, false
	}
	return Owner{ContainerID: parts[0], IfName: parts[1]}, true
}

// ValidateOwner checks that o can be recorded: both fields set, neither holding a newline.
func ValidateOwner(o Owner) error {
	if o.ContainerID == "" || o.IfName == "" {
		return fmt.Errorf("owner %s: container ID and interface name must be set", o)
	}
	if strings.ContainsAny(o.ContainerID+o.IfName, "\n\x00") {
		return fmt.Errorf("owner %q: holds a newline or NUL", o.String())
	}
	return nil
}
