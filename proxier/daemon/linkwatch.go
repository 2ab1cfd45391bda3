package daemon

// Dummy link watch: kube-ipvs0 deleted (`ip link del`, a network manager that removes links
// it does not know) or set down takes every Service VIP with it. The next full sync creates
// it again and binds the VIPs; the watch makes that happen at once instead of at the next
// periodic resync. Creating the link itself is seen too (it appears down, then goes up),
// which costs one more full sync, which finds nothing to do.

import (
	"context"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/link"
)

// LinkChanges calls lost each time the link named name is deleted or found down, until ctx
// is done or the source fails.
type LinkChanges func(ctx context.Context, name string, lost func()) error

// watchLink runs until ctx is done: kube-ipvs0 lost requests a full sync. A failing source is
// subscribed again with backoff, each time with a full sync, as changes may have been missed.
func (d *Daemon) watchLink(ctx context.Context) {
	logger := klog.FromContext(ctx)
	lost := func() {
		logger.Info("The dummy link was deleted or set down; repairing it now", "link", link.DefaultDummy)
		d.linkLost.Store(true)
		d.runner.Run()
	}
	backoff := time.Second
	for {
		err := d.linkChanges(ctx, link.DefaultDummy, lost)
		if ctx.Err() != nil {
			return
		}
		logger.Error(err, "Watching the dummy link; subscribing again", "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-d.clock.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		d.linkLost.Store(true)
		d.runner.Run()
	}
}

// NetlinkLinkChanges is the Linux LinkChanges: a netlink subscription to the link changes of
// the network namespace of the calling thread.
func NetlinkLinkChanges(ctx context.Context, name string, lost func()) error {
	return netlinkLinkChanges(ctx, nil, name, lost)
}

// netlinkLinkChanges subscribes in the network namespace ns (nil: the calling thread's).
func netlinkLinkChanges(ctx context.Context, ns *netns.NsHandle, name string, lost func()) error {
	subscribe := func(ch chan netlink.LinkUpdate, done chan struct{}, onError func(error)) error {
		return netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: ns, ErrorCallback: onError})
	}
	return watchNetlink(ctx, "link changes", subscribe, func(u netlink.LinkUpdate) {
		if u.Link == nil || u.Link.Attrs().Name != name {
			return
		}
		if u.Header.Type == unix.RTM_DELLINK || u.Link.Attrs().Flags&net.FlagUp == 0 {
			lost()
		}
	})
}
