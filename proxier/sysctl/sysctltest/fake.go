// Package sysctltest holds an in-memory sysctl.Interface: a fixed set of parameters, as a
// kernel has, that tests seed and inspect.
package sysctltest

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/kubevs/kubevs/proxier/sysctl"
)

// Fake is an in-memory sysctl.Interface, safe for concurrent use. Like the kernel it only
// knows the parameters it was given: reading or writing any other fails with fs.ErrNotExist.
// Names are validated and normalised exactly as the real implementation does.
type Fake struct {
	mu       sync.Mutex
	params   map[string]string
	ops      []string
	failNext []error
}

var _ sysctl.Interface = (*Fake)(nil)

// NewFake returns parameters holding initial's values; its names are dotted or slashed.
// It panics on an invalid name, a mistake in the test itself.
func NewFake(initial map[string]string) *Fake {
	f := &Fake{params: map[string]string{}}
	for n, v := range initial {
		p, err := sysctl.Path(n)
		if err != nil {
			panic(err)
		}
		f.params[p] = v
	}
	return f
}

// Get returns the value of a known parameter.
func (f *Fake) Get(name string) (string, error) {
	p, err := sysctl.Path(name)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.params[p]
	if !ok {
		return "", fmt.Errorf("read sysctl %s: %w", p, fs.ErrNotExist)
	}
	return v, nil
}

// Set changes a known parameter and records "set <slashed name> <value>" in Ops.
func (f *Fake) Set(name, value string) error {
	p, err := sysctl.Path(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	line := "set " + p + " " + value
	if len(f.failNext) > 0 {
		err, f.failNext = f.failNext[0], f.failNext[1:]
		f.ops = append(f.ops, line+": "+err.Error())
		return err
	}
	if _, ok := f.params[p]; !ok {
		err := fmt.Errorf("set sysctl %s: %w", p, fs.ErrNotExist)
		f.ops = append(f.ops, line+": "+err.Error())
		return err
	}
	f.params[p] = value
	f.ops = append(f.ops, line)
	return nil
}

// FailNext makes the next Set fail with err without changing anything.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = append(f.failNext, err)
}

// Ops returns the Set calls since the last ResetOps; a failed one ends in ": <error>".
func (f *Fake) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// ResetOps forgets the recorded calls.
func (f *Fake) ResetOps() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = nil
}

// Dump prints "name = value" lines sorted by slashed name.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.params))
	for n := range f.params {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s = %s\n", n, f.params[n])
	}
	return b.String()
}
