// Package ipsettest holds an in-memory ipset.Interface with the kernel's semantics, for tests
// that must not need root: ErrExist, ErrNotFound and ErrInUse where the kernel returns them,
// members checked against the set's type and family, an operation log and error injection.
package ipsettest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/ipset"
)

// Fake is an in-memory kernel set table. It is safe for concurrent use.
//
// Every call is recorded in Ops as one line, "<verb> <args>": "sets", "create <name> <type>
// <family>", "destroy <name>", "list <name>", "count <name>", "add <name> <entry>...", "del <name> <entry>...";
// a call that fails gets " (failed)" appended. Reads are recorded too, so a test can prove a
// code path did not list the kernel. FailNext and SetHook fail a call of a verb (OpAdd,
// OpCreate, ...), changing nothing.
type Fake struct {
	*kfake.Log
	rec  *kfake.Recorder
	mu   sync.Mutex
	sets map[string]*set
}

type set struct {
	ipset.Set
	members map[ipset.Entry]bool
	inUse   bool
}

var _ ipset.Interface = (*Fake)(nil)

// The verbs of Ops, for FailNext, Calls and hooks.
const (
	OpSets    = "sets"
	OpCreate  = "create"
	OpDestroy = "destroy"
	OpList    = "list"
	OpCount   = "count"
	OpAdd     = "add"
	OpDel     = "del"
)

// NewFake returns an empty set table.
func NewFake() *Fake {
	log, rec := kfake.New(kfake.MarkFailed)
	return &Fake{Log: log, rec: rec, sets: map[string]*set{}}
}

// SetInUse marks a set as referenced by a rule (or not): DestroySet then fails with ErrInUse,
// as the kernel refuses to destroy a set an iptables rule holds.
func (f *Fake) SetInUse(name string, inUse bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sets[name]
	if !ok {
		return fmt.Errorf("set %s: %w", name, ipset.ErrNotFound)
	}
	s.inUse = inUse
	return nil
}

// Has reports whether a set exists. It is not recorded in Ops: it lets other fakes (the
// netfilter fake's -m set rules) see the table as the kernel does.
func (f *Fake) Has(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.sets[name]
	return ok
}

// Flush removes every member of a set the way someone else's `ipset flush NAME` does; it is
// not recorded as an operation. A set that does not exist is an error.
func (f *Fake) Flush(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sets[name]
	if !ok {
		return fmt.Errorf("flush set %s: %w", name, ipset.ErrNotFound)
	}
	s.members = map[ipset.Entry]bool{}
	return nil
}

// Remove destroys a set the way someone else's `ipset destroy NAME` does (after the rules
// that held it were flushed): not recorded, and refused with ErrInUse while a rule holds it.
func (f *Fake) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sets[name]
	switch {
	case !ok:
		return fmt.Errorf("destroy set %s: %w", name, ipset.ErrNotFound)
	case s.inUse:
		return fmt.Errorf("destroy set %s: %w", name, ipset.ErrInUse)
	}
	delete(f.sets, name)
	return nil
}

// begin records a call and returns the error injected for it, if any. Callers hold mu.
func (f *Fake) begin(verb string, args ...string) (*kfake.Call, error) {
	return f.rec.Begin(verb, strings.Join(args, " "), true)
}

func family(s ipset.Set) ipset.Family {
	if s.Type == ipset.BitmapPort {
		return ""
	}
	if s.Family == "" {
		return ipset.IPv4
	}
	return s.Family
}

// Sets lists the set names, sorted.
func (f *Fake) Sets() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.begin(OpSets)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(f.sets))
	for n := range f.sets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// CreateSet creates a set; ErrExist if the name is taken, whatever the type.
func (f *Fake) CreateSet(s ipset.Set) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Family = family(s)
	c, err := f.begin(OpCreate, s.Name, string(s.Type), string(s.Family))
	if err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return c.Done(fmt.Errorf("create set %s: %w", s.Name, err))
	}
	if _, ok := f.sets[s.Name]; ok {
		return c.Done(fmt.Errorf("create set %s: %w", s.Name, ipset.ErrExist))
	}
	f.sets[s.Name] = &set{Set: s, members: map[ipset.Entry]bool{}}
	return nil
}

// DestroySet destroys a set; ErrNotFound if absent, ErrInUse if marked in use.
func (f *Fake) DestroySet(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.begin(OpDestroy, name)
	if err != nil {
		return err
	}
	s, ok := f.sets[name]
	switch {
	case !ok:
		return c.Done(fmt.Errorf("destroy set %s: %w", name, ipset.ErrNotFound))
	case s.inUse:
		return c.Done(fmt.Errorf("destroy set %s: %w", name, ipset.ErrInUse))
	}
	delete(f.sets, name)
	return nil
}

// Entries lists a set's members in canonical form, sorted.
func (f *Fake) Entries(name string) ([]ipset.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.begin(OpList, name)
	if err != nil {
		return nil, err
	}
	s, ok := f.sets[name]
	if !ok {
		return nil, c.Done(fmt.Errorf("list set %s: %w", name, ipset.ErrNotFound))
	}
	return s.sorted(), nil
}

// Counts returns how many members each set holds.
func (f *Fake) Counts() (map[string]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.begin(OpCount); err != nil {
		return nil, err
	}
	out := make(map[string]int, len(f.sets))
	for name, s := range f.sets {
		out[name] = len(s.members)
	}
	return out, nil
}

func (s *set) sorted() []ipset.Entry {
	out := make([]ipset.Entry, 0, len(s.members))
	for e := range s.members {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

// AddEntries adds members; present ones are not an error. Members that do not fit the set are
// reported and skipped, the others added, as the netlink implementation does.
func (f *Fake) AddEntries(name string, entries ...ipset.Entry) error {
	return f.modify(OpAdd, name, entries, true)
}

// DeleteEntries removes members; absent ones are not an error.
func (f *Fake) DeleteEntries(name string, entries ...ipset.Entry) error {
	return f.modify(OpDel, name, entries, false)
}

func (f *Fake) modify(verb, name string, entries []ipset.Entry, add bool) error {
	if len(entries) == 0 {
		return nil // the netlink implementation sends nothing either
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	args := []string{name}
	for _, e := range entries {
		args = append(args, string(e))
	}
	c, err := f.begin(verb, args...)
	if err != nil {
		return err
	}
	s, ok := f.sets[name]
	if !ok {
		return c.Done(fmt.Errorf("%s entries of set %s: %w", verb, name, ipset.ErrNotFound))
	}
	var errs []error
	for _, e := range entries {
		canon, err := ipset.Canonical(s.Set, e)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s entry of set %s: %w", verb, name, err))
			continue
		}
		if add {
			s.members[canon] = true
		} else {
			delete(s.members, canon)
		}
	}
	return c.Done(errors.Join(errs...))
}

// Dump prints every set and its members, sorted, one member per indented line:
//
//	set KUBE-LOOP-BACK hash:ip,port,ip inet comment "..."
//	  10.244.0.2,tcp:8080,10.244.0.2
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(f.sets)) {
		s := f.sets[n]
		fmt.Fprintf(&b, "set %s %s", s.Name, s.Type)
		if s.Type == ipset.BitmapPort {
			fmt.Fprintf(&b, " range %d-%d", s.PortFrom, s.PortTo)
		} else {
			fmt.Fprintf(&b, " %s", s.Family)
		}
		if s.Comment != "" {
			fmt.Fprintf(&b, " comment %q", s.Comment)
		}
		if s.inUse {
			b.WriteString(" in-use")
		}
		b.WriteByte('\n')
		for _, e := range s.sorted() {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}
