// Package netns makes and removes named network namespaces the way `ip netns add` does: a fresh
// namespace bind-mounted at /run/netns/NAME, so that CNI plugins, nsenter and `ip netns exec`
// can all find it by path. The test bed uses one per simulated pod and one for the outside host.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Dir is where named namespaces are mounted, as iproute2 expects.
const Dir = "/run/netns"

// NS is a named network namespace. It is safe for concurrent use.
type NS struct {
	name string
	ns.NetNS
	once sync.Once
	err  error
}

// New creates the namespace NAME with its loopback up. It fails with an error wrapping
// os.ErrExist if NAME is taken.
func New(name string) (*NS, error) {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", Dir, err)
	}
	path := filepath.Join(Dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return nil, fmt.Errorf("create netns file %s: %w", path, err)
	}
	_ = f.Close()

	errc := make(chan error, 1)
	go func() {
		// The thread that unshares is left locked, so the runtime discards it when this
		// goroutine ends instead of reusing a thread in the wrong namespace.
		runtime.LockOSThread()
		errc <- unshareAndMount(path)
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	n, err := ns.GetNS(path)
	if err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	return &NS{name: name, NetNS: n}, nil
}

func unshareAndMount(path string) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s: %w", path, err)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// Name is the namespace's name under Dir.
func (n *NS) Name() string { return n.name }

// Delete closes and unmounts the namespace and removes its file. The kernel frees the namespace
// (and the links inside it) once no process or mount holds it. Delete of a deleted namespace
// returns nil.
func (n *NS) Delete() error {
	n.once.Do(func() { n.err = n.delete() })
	return n.err
}

func (n *NS) delete() error {
	path := filepath.Join(Dir, n.name)
	var errs []error
	if err := n.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("unmount %s: %w", path, err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove %s: %w", path, err))
	}
	return errors.Join(errs...)
}
