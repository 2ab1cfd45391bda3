package testenv

import (
	"fmt"
	"os"
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
		_ = created.Close()
		return nil, fmt.Errorf("return to original namespace: %w", err)
	}
	// created.Path() names the thread's namespace (/proc/<pid>/task/<tid>/ns/net), which is
	// the original one again now. Reopen it through our own descriptor so that Path() keeps
	// naming the new namespace for other processes (a CNI plugin given it as CNI_NETNS).
	stable, err := ns.GetNS(fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), created.Fd()))
	if err != nil {
		_ = created.Close()
		return nil, err
	}
	return &fdNetns{NetNS: stable, holder: created}, nil
}

// fdNetns keeps the descriptor its path goes through open until Close.
type fdNetns struct {
	ns.NetNS
	holder ns.NetNS
}

func (n *fdNetns) Close() error {
	err := n.NetNS.Close()
	if herr := n.holder.Close(); err == nil {
		err = herr
	}
	return err
}
