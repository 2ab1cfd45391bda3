package daemon

// Host address watch: with nodePortAddresses set, NodePorts and health check ports are
// served on the host addresses inside those CIDRs. The addresses are read before every full
// sync; the watch makes an address that appears or goes (DHCP renewal, a second NIC, a VIP
// moved by keepalived) trigger one at once instead of at the next periodic resync. Changes
// outside the CIDRs, on kubevs's own dummy link (Service VIPs) and link-local ones (each new
// pod's veth) are ignored, so pod churn never causes full syncs.

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/link"
)

// AddressChanges streams the host's address changes to changed (the link's name, "" when
// unknown, and the address) until ctx is done or the source fails.
type AddressChanges func(ctx context.Context, changed func(linkName string, addr netip.Addr)) error

// watchAddresses runs until ctx is done: every relevant host address change requests a full
// sync. A failing source is re-subscribed with backoff, each time with a full sync, as
// changes may have been missed meanwhile.
func (d *Daemon) watchAddresses(ctx context.Context) {
	logger := klog.FromContext(ctx)
	cidrs := config.ParsedCIDRs(d.cfg.NodePortAddresses)
	relevant := func(linkName string, a netip.Addr) bool {
		if linkName == link.DefaultDummy || a.IsLinkLocalUnicast() {
			return false
		}
		for _, c := range cidrs {
			if c.Contains(a) {
				return true
			}
		}
		return false
	}
	backoff := time.Second
	for {
		err := d.addrChanges(ctx, func(linkName string, a netip.Addr) {
			if !relevant(linkName, a) {
				return
			}
			logger.V(2).Info("Host address changed; NodePort addresses follow", "link", linkName, "address", a)
			d.addrsChanged.Store(true)
			d.runner.Run()
		})
		if ctx.Err() != nil {
			return
		}
		logger.Error(err, "Watching the host's addresses; subscribing again", "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-d.clock.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		d.addrsChanged.Store(true) // changes may have been missed
		d.runner.Run()
	}
}

// NetlinkAddressChanges is the Linux AddressChanges: a netlink subscription to the address
// changes of the network namespace of the calling thread.
func NetlinkAddressChanges(ctx context.Context, changed func(linkName string, addr netip.Addr)) error {
	return netlinkAddressChanges(ctx, nil, changed)
}

// netlinkAddressChanges subscribes in the network namespace ns (nil: the calling thread's).
// Link names are looked up in the calling thread's namespace.
func netlinkAddressChanges(ctx context.Context, ns *netns.NsHandle, changed func(linkName string, addr netip.Addr)) error {
	subscribe := func(ch chan netlink.AddrUpdate, done chan struct{}, onError func(error)) error {
		o := netlink.AddrSubscribeOptions{
			Namespace: ns, ErrorCallback: onError,
			// kubevs's own VIP binds arrive in bursts of thousands: a socket the default
			// size overflowed (ENOBUFS) during a cold sync of 10,000 Services.
			ReceiveBufferSize: addrWatchBuffer, ReceiveBufferForceSize: true,
		}
		if !addrWatchUnforced.Load() {
			if err := netlink.AddrSubscribeWithOptions(ch, done, o); err == nil {
				return nil
			}
			// Without CAP_NET_ADMIN the size cannot be forced (and the library leaves that
			// socket open): the default from now on.
			addrWatchUnforced.Store(true)
		}
		o.ReceiveBufferSize, o.ReceiveBufferForceSize = 0, false
		return netlink.AddrSubscribeWithOptions(ch, done, o)
	}
	names := linkNames{}
	return watchNetlink(ctx, "address changes", subscribe, func(u netlink.AddrUpdate) {
		a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
		if !ok {
			return
		}
		changed(names.name(u.LinkIndex), a.Unmap())
	})
}

// addrWatchBuffer is the address watch's socket receive buffer (the kernel counts about
// 1 KiB per notification).
const addrWatchBuffer = 8 << 20

// addrWatchUnforced is set once forcing the buffer failed.
var addrWatchUnforced atomic.Bool

// linkNames remembers the names of the links an address watch has seen, by index. Looking
// one up (net.InterfaceByIndex) dumps every link, and every VIP kubevs binds brings an
// address event: at 10,000 Services the lookups took 5.4 s of a 74 s cold sync in the test
// VM. Indexes are not reused while the kernel runs (they only grow), so a name is stale only
// after a rename, and the watch uses names only to leave kubevs's dummy link out: a link
// renamed to or from kube-ipvs0 is the one case it misjudges until the table is cleared
// (when it holds maxLinkNames). A lookup that fails is not remembered.
type linkNames map[int]string

const maxLinkNames = 1024

func (c linkNames) name(index int) string {
	if n, ok := c[index]; ok {
		return n
	}
	i, err := net.InterfaceByIndex(index)
	if err != nil {
		return ""
	}
	if len(c) >= maxLinkNames {
		clear(c)
	}
	c[index] = i.Name
	return i.Name
}
