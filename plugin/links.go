package plugin

// Hairpin: a pod that connects to a Service VIP may be load balanced back to itself. The reply
// then has to leave the bridge through the very port the request came in on, which a Linux
// bridge refuses unless that port has hairpin mode on. So ADD turns hairpin on for the host
// side of the pod's veth when it is a bridge port. A routed (ptp) veth needs nothing: the
// packet goes through the host's routing, not a bridge.
//
// The host side is found from inside the pod: the pod interface is one end of a veth, and its
// peer's ifindex (ethtool) names the host end. The match is checked both ways (the host end's
// peer must be the pod interface), because an ifindex alone could belong to a link in another
// namespace.

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// PodLink is what the plugin learns about a pod's interface.
type PodLink struct {
	// IfName is the interface in the pod.
	IfName string
	// IPs are the global addresses on IfName.
	IPs []netip.Addr
	// HostIfName is the host end of the pod's veth; empty when the pod interface is not a veth
	// whose peer is in this namespace (macvlan, ipvlan, ...).
	HostIfName string
	// Bridge is the bridge HostIfName is a port of; empty for a routed link.
	Bridge string
}

// Links is the kernel seam of the plugin: reading the pod's link and setting hairpin. The
// plugin runs in the host network namespace.
type Links interface {
	// Inspect finds ifName in the network namespace at netnsPath and its host-side peer. A
	// netns path that is not a network namespace is a *types.Error with code 8.
	Inspect(netnsPath, ifName string) (PodLink, error)
	// SetHairpin turns hairpin on for the bridge port hostIfName; idempotent.
	SetHairpin(hostIfName string) error
	// Hairpin reads the hairpin flag of the bridge port hostIfName.
	Hairpin(hostIfName string) (bool, error)
}

// NetlinkLinks is the Linux implementation of Links.
type NetlinkLinks struct{}

var _ Links = NetlinkLinks{}

// ErrNoInterface is returned (wrapped) when the pod interface does not exist.
var ErrNoInterface = errors.New("interface not found")

// Inspect implements Links.
func (NetlinkLinks) Inspect(netnsPath, ifName string) (PodLink, error) {
	netns, err := ns.GetNS(netnsPath)
	if err != nil {
		return PodLink{}, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("netns %q: %v", netnsPath, err), "")
	}
	defer netns.Close()
	pl := PodLink{IfName: ifName}
	podIndex, peerIndex := 0, 0
	err = netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(ifName)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return fmt.Errorf("pod interface %s: %w", ifName, ErrNoInterface)
			}
			return fmt.Errorf("find pod interface %s: %w", ifName, err)
		}
		podIndex = l.Attrs().Index
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("list addresses of %s: %w", ifName, err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().IsGlobalUnicast() {
				pl.IPs = append(pl.IPs, ip.Unmap())
			}
		}
		if v, ok := l.(*netlink.Veth); ok {
			if peerIndex, err = netlink.VethPeerIndex(v); err != nil {
				return fmt.Errorf("find veth peer of %s: %w", ifName, err)
			}
		}
		return nil
	})
	if err != nil {
		return PodLink{}, err
	}
	if peerIndex == 0 {
		return pl, nil
	}
	host, err := netlink.LinkByIndex(peerIndex)
	if err != nil {
		return pl, nil // the peer is not in this namespace
	}
	hv, ok := host.(*netlink.Veth)
	if !ok {
		return pl, nil
	}
	if back, err := netlink.VethPeerIndex(hv); err != nil || back != podIndex {
		return pl, nil
	}
	pl.HostIfName = host.Attrs().Name
	if m := host.Attrs().MasterIndex; m != 0 {
		master, err := netlink.LinkByIndex(m)
		if err != nil {
			return PodLink{}, fmt.Errorf("find master of %s: %w", pl.HostIfName, err)
		}
		if master.Type() == "bridge" {
			pl.Bridge = master.Attrs().Name
		}
	}
	return pl, nil
}

// Hairpin implements Links. The kernel answers bridge port flags only to a dump of every port
// (RTM_GETLINK, AF_BRIDGE), O(ports): ADD therefore sets hairpin without reading it first, and
// only CHECK reads it.
func (NetlinkLinks) Hairpin(hostIfName string) (bool, error) {
	l, err := netlink.LinkByName(hostIfName)
	if err != nil {
		return false, fmt.Errorf("find bridge port %s: %w", hostIfName, err)
	}
	pi, err := netlink.LinkGetProtinfo(l)
	if err != nil {
		return false, fmt.Errorf("read bridge port flags of %s: %w", hostIfName, err)
	}
	return pi.Hairpin, nil
}

// SetHairpin implements Links.
func (NetlinkLinks) SetHairpin(hostIfName string) error {
	l, err := netlink.LinkByName(hostIfName)
	if err != nil {
		return fmt.Errorf("find bridge port %s: %w", hostIfName, err)
	}
	if err := netlink.LinkSetHairpin(l, true); err != nil {
		return fmt.Errorf("set hairpin on %s: %w", hostIfName, err)
	}
	return nil
}
