// Package ipsettest holds an in-memory ipset.Interface with the kernel's semantics, for tests
// that must not need root: ErrExist, ErrNotFound and ErrInUse where the kernel returns them,
// members checked against the set's type and family, an operation log and error injection.
package ipsettest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// Fake is an in-memory kernel set table. It is safe for concurrent use.
//
// Every call is recorded in Ops as one line, "<verb> <args>": "sets", "create <name> <type>
// <family>", "destroy <name>", "list <name>", "add <name> <entry>...", "del <name> <entry>...";
// a call that fails gets " (failed)" appended. Reads are recorded too, so a test can prove a
// code path did not list the kernel.
type Fake struct {
	mu    sync.Mutex
	sets  map[string]*set
	ops   []string
	fails map[string][]error
}

type set struct {
	ipset.Set
	members map[ipset.Entry]bool
	inUse   bool
}

var _ ipset.Interface = (*Fake)(nil)

// The verbs of Ops, for FailNext.
const (
	OpSets    = "sets"
	OpCreate  = "create"
	OpDestroy = "destroy"
	OpList    = "list"
	OpAdd     = "add"
	OpDel     = "del"
)

// NewFake returns an empty set table.
func NewFake() *Fake {
	return &Fake{sets: map[string]*set{}, fails: map[string][]error{}}
}

// FailNext makes the next call with this verb (OpAdd, OpCreate, ...) fail with err, changing
// nothing. Several calls queue several failures.
func (f *Fake) FailNext(verb string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[verb] = append(f.fails[verb], err)
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

// Ops returns the calls recorded since the last ResetOps.
func (f *Fake) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// ResetOps clears the operation log.
func (f *Fake) ResetOps() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = nil
}

// begin records an op and returns an injected failure for its verb, if any. Callers hold mu.
func (f *Fake) begin(verb string, args ...string) (finish func(error) error, injected error) {
	i := len(f.ops)
	f.ops = append(f.ops, strings.Join(append([]string{verb}, args...), " "))
	finish = func(err error) error {
		if err != nil {
			f.ops[i] += " (failed)"
		}
		return err
	}
	if q := f.fails[verb]; len(q) > 0 {
		f.fails[verb] = q[1:]
		return finish, q[0]
	}
	return finish, nil
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
	finish, injected := f.begin(OpSets)
	if injected != nil {
		return nil, finish(injected)
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
	finish, injected := f.begin(OpCreate, s.Name, string(s.Type), string(s.Family))
	if injected != nil {
		return finish(injected)
	}
	if err := s.Validate(); err != nil {
		return finish(fmt.Errorf("create set %s: %w", s.Name, err))
	}
	if _, ok := f.sets[s.Name]; ok {
		return finish(fmt.Errorf("create set %s: %w", s.Name, ipset.ErrExist))
	}
	f.sets[s.Name] = &set{Set: s, members: map[ipset.Entry]bool{}}
	return nil
}

// DestroySet destroys a set; ErrNotFound if absent, ErrInUse if marked in use.
func (f *Fake) DestroySet(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	finish, injected := f.begin(OpDestroy, name)
	if injected != nil {
		return finish(injected)
	}
	s, ok := f.sets[name]
	switch {
	case !ok:
		return finish(fmt.Errorf("destroy set %s: %w", name, ipset.ErrNotFound))
	case s.inUse:
		return finish(fmt.Errorf("destroy set %s: %w", name, ipset.ErrInUse))
	}
	delete(f.sets, name)
	return nil
}

// Entries lists a set's members in canonical form, sorted.
func (f *Fake) Entries(name string) ([]ipset.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	finish, injected := f.begin(OpList, name)
	if injected != nil {
		return nil, finish(injected)
	}
	s, ok := f.sets[name]
	if !ok {
		return nil, finish(fmt.Errorf("list set %s: %w", name, ipset.ErrNotFound))
	}
	return s.sorted(), nil
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
	finish, injected := f.begin(verb, args...)
	if injected != nil {
		return finish(injected)
	}
	s, ok := f.sets[name]
	if !ok {
		return finish(fmt.Errorf("%s entries of set %s: %w", verb, name, ipset.ErrNotFound))
	}
	var errs []error
	for _, e := range entries {
		c, err := ipset.Canonical(s.Set, e)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s entry of set %s: %w", verb, name, err))
			continue
		}
		if add {
			s.members[c] = true
		} else {
			delete(s.members, c)
		}
	}
	return finish(errors.Join(errs...))
}

// Dump prints every set and its members, sorted, one member per indented line:
//
//	set KUBE-LOOP-BACK hash:ip,port,ip inet comment "..."
//	  10.244.0.2,tcp:8080,10.244.0.2
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.sets))
	for n := range f.sets {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
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
