// Package testenv tells tests what the machine under them can do and enforces the project's
// rule: a test that cannot run here fails loudly in CI (CI or KUBEVS_STRICT set) instead of
// skipping quietly.
//
// Three places run tests: the host as a normal user (unit tests on fakes), the host as root
// (real netfilter, veth, bridge, ipset in a fresh network namespace), and the test VM
// (KUBEVS_IN_VM=1: IPVS and dummy links). `make vm-integration` runs the VM tests there.
package testenv

import (
	"os"
	"runtime"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
)

// Strict reports whether skips must become failures.
func Strict() bool { return os.Getenv("CI") != "" || os.Getenv("KUBEVS_STRICT") != "" }

// InVM reports whether the test runs inside the project's test VM.
func InVM() bool { return os.Getenv("KUBEVS_IN_VM") == "1" }

// Skip skips, or fails in strict mode: for a test this machine cannot run but CI must.
func Skip(t testing.TB, why string) {
	t.Helper()
	if Strict() {
		t.Fatalf("cannot run here (and CI must run it): %s", why)
	}
	t.Skip(why)
}

// RequireRoot skips (fails in strict mode) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root: run as root (make test does)")
	}
}

// RequireVM skips unless the test runs inside the test VM. The skip is never turned into a
// failure on the host because `make vm-integration` runs these tests in the VM.
func RequireVM(t testing.TB) {
	t.Helper()
	if !InVM() {
		t.Skip("needs the kernel of the test VM (IPVS, dummy links): run by make vm-integration")
	}
}

// NewNetns creates a fresh network namespace, brings its loopback up, and closes it when the
// test ends. Run code in it with ns.Do; the test's own thread stays where it was.
func NewNetns(t testing.TB) ns.NetNS {
	t.Helper()
	RequireRoot(t)
	n, err := newNetns()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// InNetns runs fn with its goroutine locked to a fresh network namespace.
func InNetns(t testing.TB, fn func()) {
	t.Helper()
	n := NewNetns(t)
	if err := n.Do(func(ns.NetNS) error { fn(); return nil }); err != nil {
		t.Fatalf("run in network namespace: %v", err)
	}
	runtime.Gosched()
}

// EnterNetns moves the calling goroutine, locked to its thread, into a fresh network
// namespace until the test ends, so processes it starts inherit the namespace. Subtests
// (their own goroutines) need their own call. If the thread cannot return to its namespace
// it stays locked, and the runtime retires it rather than reuse it elsewhere.
func EnterNetns(t testing.TB) {
	t.Helper()
	n := NewNetns(t)
	runtime.LockOSThread()
	orig, err := ns.GetCurrentNS()
	if err != nil {
		t.Fatalf("get current netns: %v", err)
	}
	if err := n.Set(); err != nil {
		t.Fatalf("enter netns: %v", err)
	}
	t.Cleanup(func() {
		if err := orig.Set(); err != nil {
			t.Errorf("return to netns: %v", err)
			return // leave the thread locked: the runtime retires it
		}
		_ = orig.Close()
		runtime.UnlockOSThread()
	})
}

// LiveHeap returns the bytes of live heap objects after a full collection (two, so that
// objects freed by finalizers are gone too): what a memory benchmark reports as held.
func LiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
