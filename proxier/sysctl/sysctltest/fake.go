// Package sysctltest holds an in-memory sysctl.Interface: a fixed set of parameters, as a
// kernel has, that tests seed and inspect.
package sysctltest

import (
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/sysctl"
)

// Fake is an in-memory sysctl.Interface, safe for concurrent use. Like the kernel it only
// knows the parameters it was given: reading or writing any other fails with fs.ErrNotExist.
// Names are validated and normalised exactly as the real implementation does.
//
// Its Log records every Set with a valid name as "set <slashed name> <value>", a failed one
// ending in ": <error>"; Get is not recorded.
type Fake struct {
	*kfake.Log
	rec    *kfake.Recorder
	mu     sync.Mutex
	params map[string]string
}

// OpSet is the operation name of Set, for Calls and hooks.
const OpSet = "set"

var _ sysctl.Interface = (*Fake)(nil)

// NewFake returns parameters holding initial's values; its names are dotted or slashed.
// It panics on an invalid name, a mistake in the test itself.
func NewFake(initial map[string]string) *Fake {
	log, rec := kfake.New(kfake.MarkError)
	f := &Fake{Log: log, rec: rec, params: map[string]string{}}
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
	c, err := f.rec.Begin(OpSet, p+" "+value, true)
	if err != nil {
		return err
	}
	if _, ok := f.params[p]; !ok {
		return c.Done(fmt.Errorf("set sysctl %s: %w", p, fs.ErrNotExist))
	}
	f.params[p] = value
	return nil
}

// FailNext makes the next Set fail with err without changing anything; it stands for the
// Log's FailNext(OpSet, err).
func (f *Fake) FailNext(err error) { f.Log.FailNext(OpSet, err) }

// Dump prints "name = value" lines sorted by slashed name.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(f.params)) {
		fmt.Fprintf(&b, "%s = %s\n", n, f.params[n])
	}
	return b.String()
}
