package nodeapi

// The store keeps one JSON file per attachment, named "<containerID>@<ifName>.json". CNI
// container IDs never hold '@' or '/', and interface names never hold '/', so the name is
// unambiguous and cannot escape the directory. Every write goes to a temporary file that is
// fsync'd, renamed over the final name, and followed by an fsync of the directory, so after a
// crash a file is either the old registration or the new one, never a torn one.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

const (
	fileSuffix = ".json"
	tmpPrefix  = ".tmp-"
)

// MaxRegistrations caps the registrations a Store holds: far above the pods a node runs
// (kubelet's default maxPods is 110), low enough that a caller looping on register cannot
// fill the disk or make every sync walk an unbounded list.
const MaxRegistrations = 4096

// ErrTooManyRegistrations is returned by Register when the store holds MaxRegistrations.
var ErrTooManyRegistrations = errors.New("too many registrations")

// Store holds the registrations the proxier knows, in memory and on disk. It is safe for
// concurrent use; OnChange callbacks run after the change is on disk, outside the lock.
type Store struct {
	dir string
	max int // MaxRegistrations; lowered by tests

	mu        sync.Mutex
	regs      map[Attachment]Registration
	ips       map[netip.Addr]int // how many registrations hold each IP (unmapped)
	skipped   []string
	listeners []func()
}

// NewStore opens (creating it 0700 if needed) the directory dir and loads every registration
// in it. Files that are not registrations (foreign names, bad JSON, a name that disagrees with
// the content) are left alone and reported by Skipped; leftover temporary files are removed.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create store directory %s: %w", dir, err)
	}
	s := &Store{dir: dir, max: MaxRegistrations, regs: map[Attachment]Registration{}, ips: map[netip.Addr]int{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read store directory %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		r, err := s.load(e)
		if err != nil {
			s.skipped = append(s.skipped, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		s.put(r)
	}
	return s, nil
}

func (s *Store) load(e os.DirEntry) (Registration, error) {
	if !e.Type().IsRegular() {
		return Registration{}, errors.New("not a regular file")
	}
	key, ok := parseFileName(e.Name())
	if !ok {
		return Registration{}, errors.New("not a registration file name")
	}
	b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
	if err != nil {
		return Registration{}, err
	}
	var r Registration
	if err := json.Unmarshal(b, &r); err != nil {
		return Registration{}, fmt.Errorf("decode: %w", err)
	}
	if r.Key() != key {
		return Registration{}, fmt.Errorf("content names %s", r.Key())
	}
	if err := r.Validate(); err != nil {
		return Registration{}, err
	}
	return r, nil
}

func fileName(a Attachment) string { return a.ContainerID + "@" + a.IfName + fileSuffix }

func parseFileName(name string) (Attachment, bool) {
	base, ok := strings.CutSuffix(name, fileSuffix)
	if !ok {
		return Attachment{}, false
	}
	id, ifName, ok := strings.Cut(base, "@")
	if !ok {
		return Attachment{}, false
	}
	a := Attachment{ContainerID: id, IfName: ifName}
	return a, a.Validate() == nil
}

// Dir returns the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

// Skipped lists the files NewStore ignored, each with the reason.
func (s *Store) Skipped() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.skipped)
}

// OnChange registers fn to be called after every change (register, unregister, gc) that
// altered the store. fn must not block for long.
func (s *Store) OnChange(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, fn)
}

func (s *Store) notify() {
	s.mu.Lock()
	ls := slices.Clone(s.listeners)
	s.mu.Unlock()
	for _, fn := range ls {
		fn()
	}
}

// Register stores r, replacing any registration with the same (ContainerID, IfName). It is
// idempotent: registering an identical value again changes nothing and notifies no one.
func (s *Store) Register(r Registration) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("register %s: %w", r.Key(), err)
	}
	r.IPs = slices.Clone(r.IPs)
	s.mu.Lock()
	old, had := s.regs[r.Key()]
	if had && equalRegistration(old, r) {
		s.mu.Unlock()
		return nil
	}
	if !had && len(s.regs) >= s.max {
		s.mu.Unlock()
		return fmt.Errorf("register %s: %w (%d; unregister or GC stale pods first)", r.Key(), ErrTooManyRegistrations, s.max)
	}
	err := s.write(r)
	if err == nil {
		s.put(r)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("register %s: %w", r.Key(), err)
	}
	s.notify()
	return nil
}

func equalRegistration(a, b Registration) bool {
	return slices.Equal(a.IPs, b.IPs) && a.ContainerID == b.ContainerID && a.IfName == b.IfName &&
		a.Netns == b.Netns && a.PodNamespace == b.PodNamespace && a.PodName == b.PodName &&
		a.PodUID == b.PodUID && a.HostIfName == b.HostIfName
}

// write persists r atomically. Callers hold s.mu.
func (s *Store) write(r Registration) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // a no-op once renamed
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, fileName(r.Key()))); err != nil {
		return err
	}
	return s.syncDir()
}

func (s *Store) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Unregister removes the registration a. It is idempotent: it reports whether a was present
// and returns no error when it was not.
func (s *Store) Unregister(a Attachment) (bool, error) {
	if err := a.Validate(); err != nil {
		return false, fmt.Errorf("unregister %s: %w", a, err)
	}
	s.mu.Lock()
	_, ok := s.regs[a]
	err := s.remove(a)
	if err == nil {
		s.del(a)
	}
	s.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("unregister %s: %w", a, err)
	}
	if ok {
		s.notify()
	}
	return ok, nil
}

// remove deletes a's file; an absent file is fine. Callers hold s.mu.
func (s *Store) remove(a Attachment) error {
	err := os.Remove(filepath.Join(s.dir, fileName(a)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err == nil {
		return s.syncDir()
	}
	return nil
}

// GC removes every registration whose attachment is not in valid and returns them. It goes on
// past a failed removal and returns the errors joined.
func (s *Store) GC(valid []Attachment) ([]Registration, error) {
	keep := make(map[Attachment]bool, len(valid))
	for _, a := range valid {
		keep[a] = true
	}
	var removed []Registration
	var errs []error
	s.mu.Lock()
	for a, r := range s.regs {
		if keep[a] {
			continue
		}
		if err := s.remove(a); err != nil {
			errs = append(errs, fmt.Errorf("gc %s: %w", a, err))
			continue
		}
		s.del(a)
		removed = append(removed, r)
	}
	s.mu.Unlock()
	sortRegistrations(removed)
	if len(removed) > 0 {
		s.notify()
	}
	return removed, errors.Join(errs...)
}

// Get returns the registration a, if present.
func (s *Store) Get(a Attachment) (Registration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.regs[a]
	r.IPs = slices.Clone(r.IPs)
	return r, ok
}

// put stores r in memory, replacing the registration of its attachment. Callers hold s.mu.
func (s *Store) put(r Registration) {
	s.del(r.Key())
	s.regs[r.Key()] = r
	for _, ip := range r.IPs {
		s.ips[ip.Unmap()]++
	}
}

// del drops a's registration from memory, if any. Callers hold s.mu.
func (s *Store) del(a Attachment) {
	old, ok := s.regs[a]
	if !ok {
		return
	}
	delete(s.regs, a)
	for _, ip := range old.IPs {
		ip = ip.Unmap()
		if s.ips[ip]--; s.ips[ip] <= 0 {
			delete(s.ips, ip)
		}
	}
}

// IPs returns the set of IPs (unmapped) the registrations hold. It costs one copy of that
// set, not a walk over every registration: callers may call it after every change, which a
// caller looping on register would otherwise make quadratic.
func (s *Store) IPs() map[netip.Addr]struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[netip.Addr]struct{}, len(s.ips))
	for ip := range s.ips {
		out[ip] = struct{}{}
	}
	return out
}

// List returns every registration, sorted by container ID then ifname.
func (s *Store) List() []Registration {
	s.mu.Lock()
	out := make([]Registration, 0, len(s.regs))
	for _, r := range s.regs {
		r.IPs = slices.Clone(r.IPs)
		out = append(out, r)
	}
	s.mu.Unlock()
	sortRegistrations(out)
	return out
}

func sortRegistrations(rs []Registration) {
	slices.SortFunc(rs, func(a, b Registration) int {
		if c := strings.Compare(a.ContainerID, b.ContainerID); c != 0 {
			return c
		}
		return strings.Compare(a.IfName, b.IfName)
	})
}
