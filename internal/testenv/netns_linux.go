package testenv

import (
	"fmt"
	"runtime"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// newNetns makes an unnamed network namespace with loopback up.
func newNetns() (ns.NetNS, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := ns.GetCurrentNS()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("unshare: %w", err)
	}
	created, err := ns.GetCurrentNS()
	if err != nil {
		_ = orig.Set()
		return nil, err
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		_ = netlink.LinkSetUp(lo)
	}
	if err := orig.Set(); err != nil {
		return nil, fmt.Errorf("return to original namespace: %w", err)
	}
	return created, nil
}
