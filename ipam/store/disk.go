package store

// Disk layout, one directory per network:
//
//	lock                  flock'd exclusively from the start of an allocation or release to its end
//	<ip>                  one file per reserved address ("10.244.1.7", "fd00::7"), created with
//	                      O_CREAT|O_EXCL; content "<containerID>\n<ifName>\n"
//	last_reserved.<key>   the address last handed out for a range (round robin); replaced atomically
//
// Crash safety. A reservation is written in this order: create with O_EXCL, write the record,
// fsync the file, and (Sync, once for all the addresses of one ADD) fsync the directory; only
// then does ADD report the address. So after a
// crash or a power loss, a reservation file is either a complete record (the address may have
// been handed out: it stays reserved until its owner is deleted or garbage-collected) or
// something shorter or different (empty, cut short, garbage): such a file belongs to an ADD
// that never succeeded, so no pod uses the address. It is reclaimed, but only while holding
// the lock, because the lock is also held by every writer from create to fsync: nobody can
// be in the middle of writing it. This is why a torn file never blocks allocation.

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/install/atomicfile"
)

const (
	lockName   = "lock"
	lastPrefix = "last_reserved."
	// maxRecord bounds what is read of a reservation file: a container ID and an interface name.
	maxRecord = 4096
)

// Disk is the on-disk store. It is safe for concurrent use by goroutines (a mutex) and by
// processes (a flock on dir/lock); every open Disk holds its own lock file descriptor.
type Disk struct {
	dir  string
	mu   sync.Mutex
	lock *os.File
}

var _ Store = (*Disk)(nil)

// OpenDisk opens the store in dir, creating it (0700) if needed.
func OpenDisk(dir string) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create store directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store lock: %w", err)
	}
	return &Disk{dir: dir, lock: f}, nil
}

// Dir returns the store's directory.
func (d *Disk) Dir() string { return d.dir }

// Lock implements Store.
func (d *Disk) Lock() error {
	d.mu.Lock()
	for {
		err := unix.Flock(int(d.lock.Fd()), unix.LOCK_EX)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINTR) {
			d.mu.Unlock()
			return fmt.Errorf("lock store %s: %w", d.dir, err)
		}
	}
}

// Unlock implements Store.
func (d *Disk) Unlock() error {
	defer d.mu.Unlock()
	if err := unix.Flock(int(d.lock.Fd()), unix.LOCK_UN); err != nil {
		return fmt.Errorf("unlock store %s: %w", d.dir, err)
	}
	return nil
}

// Close implements Store.
func (d *Disk) Close() error { return d.lock.Close() }

func (d *Disk) path(ip netip.Addr) string { return filepath.Join(d.dir, ip.String()) }

// Reserve implements Store.
func (d *Disk) Reserve(ip netip.Addr, o Owner) error {
	if err := ValidateOwner(o); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := d.create(ip, o)
		if !errors.Is(err, os.ErrExist) {
			return err
		}
		if _, ok, rerr := d.read(ip); rerr != nil || ok || attempt > 0 {
			if rerr != nil {
				return rerr
			}
			return fmt.Errorf("reserve %s: %w", ip, ErrReserved)
		}
		// A torn record: safe to reclaim under the lock (see the comment at the top).
		if err := os.Remove(d.path(ip)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("reclaim torn reservation %s: %w", ip, err)
		}
	}
}

func (d *Disk) create(ip netip.Addr, o Owner) (err error) {
	p := d.path(ip)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if os.IsExist(err) {
			return os.ErrExist
		}
		return fmt.Errorf("reserve %s: %w", ip, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(p)
		}
	}()
	if _, err = f.Write(record(o)); err != nil {
		return fmt.Errorf("write reservation %s: %w", ip, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("fsync reservation %s: %w", ip, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close reservation %s: %w", ip, err)
	}
	return nil
}

// Sync implements Store: an fsync of the store's directory.
func (d *Disk) Sync() error { return atomicfile.SyncDir(d.dir) }

// read returns the owner of ip's file; ok false when the record is torn.
func (d *Disk) read(ip netip.Addr) (Owner, bool, error) {
	f, err := os.Open(d.path(ip))
	if err != nil {
		return Owner{}, false, fmt.Errorf("read reservation %s: %w", ip, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return Owner{}, false, fmt.Errorf("read reservation %s: %w", ip, err)
	}
	if len(b) > maxRecord {
		return Owner{}, false, nil
	}
	o, ok := parseRecord(b)
	return o, ok, nil
}

// Release implements Store.
func (d *Disk) Release(ip netip.Addr) error {
	if err := os.Remove(d.path(ip)); err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("release %s: %w", ip, ErrNotReserved)
		}
		return fmt.Errorf("release %s: %w", ip, err)
	}
	return nil
}

// List implements Store. Files whose name is not an address are ignored.
func (d *Disk) List() ([]Entry, error) {
	des, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("list store %s: %w", d.dir, err)
	}
	var out []Entry
	for _, de := range des {
		ip, err := netip.ParseAddr(de.Name())
		if err != nil || !de.Type().IsRegular() || ip.String() != de.Name() {
			continue
		}
		o, ok, err := d.read(ip)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		out = append(out, Entry{IP: ip, Owner: o, Corrupt: !ok})
	}
	slices.SortFunc(out, func(a, b Entry) int { return a.IP.Compare(b.IP) })
	return out, nil
}

// LastReserved implements Store. A missing or unreadable file means none.
func (d *Disk) LastReserved(key string) (netip.Addr, bool, error) {
	if err := validKey(key); err != nil {
		return netip.Addr{}, false, err
	}
	b, err := os.ReadFile(filepath.Join(d.dir, lastPrefix+key))
	if err != nil {
		if os.IsNotExist(err) {
			return netip.Addr{}, false, nil
		}
		return netip.Addr{}, false, fmt.Errorf("read last reserved %s: %w", key, err)
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil {
		return netip.Addr{}, false, nil
	}
	return ip, true, nil
}

// SetLastReserved implements Store.
func (d *Disk) SetLastReserved(key string, ip netip.Addr) error {
	if err := validKey(key); err != nil {
		return err
	}
	// Written under a temporary name and renamed (a reader never sees half of it), but not
	// fsync'd: it is a hint (see Store.SetLastReserved), and an fsync costs more than an ADD.
	p := filepath.Join(d.dir, lastPrefix+key)
	tmp := filepath.Join(d.dir, "."+lastPrefix+key+atomicfile.TempMarker)
	if err := os.WriteFile(tmp, []byte(ip.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("record last reserved %s: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("record last reserved %s: %w", key, err)
	}
	return nil
}

func validKey(key string) error {
	if key == "" || strings.ContainsAny(key, "/\x00") || key == "." || key == ".." {
		return fmt.Errorf("invalid last-reserved key %q", key)
	}
	return nil
}
