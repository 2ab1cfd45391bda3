package vm

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Link is a guest's network card on an L2 segment shared with one other guest: qemu's socket
// netdev in UDP mode sends each Ethernet frame the guest transmits to the peer's UDP address
// and delivers to the guest each frame received on its own. Two guests whose Local and Peer
// are crossed are two hosts on one cable, each with its own kernel networking (the two-node
// scenarios). Nothing leaves the host's loopback, and nothing is ordered: a guest that boots
// first loses its frames until the other's qemu listens, as a cable not yet plugged in.
//
// The guest sees the card as eth0 (virtio_net, loaded by /init), down and without an address:
// the command in the guest configures it.
type Link struct {
	// Local is this guest's UDP address on the host, Peer the other guest's.
	Local, Peer netip.AddrPort
	// MAC is the card's address; empty means one derived from Local's port.
	MAC string
}

// ParseLink parses the kubevs-vm flag LOCALPORT:PEERPORT, two UDP ports on 127.0.0.1.
func ParseLink(s string) (*Link, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("link %q: want LOCALPORT:PEERPORT", s)
	}
	local, err := parsePort(a)
	if err != nil {
		return nil, fmt.Errorf("link %q: local port: %w", s, err)
	}
	peer, err := parsePort(b)
	if err != nil {
		return nil, fmt.Errorf("link %q: peer port: %w", s, err)
	}
	if local == peer {
		return nil, fmt.Errorf("link %q: local and peer port are the same", s)
	}
	lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	return &Link{Local: netip.AddrPortFrom(lo, local), Peer: netip.AddrPortFrom(lo, peer)}, nil
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(p), nil
}

// mac is the card's MAC address: a locally administered one (52:54:00 is qemu's prefix) whose
// last two bytes are the local port, so the two ends of a link differ.
func (l *Link) mac() string {
	if l.MAC != "" {
		return l.MAC
	}
	p := l.Local.Port()
	return fmt.Sprintf("52:54:00:4b:%02x:%02x", p>>8, p&0xff)
}

// qemuArgs are the netdev and device options of the card.
func (l *Link) qemuArgs() []string {
	return []string{
		"-netdev", fmt.Sprintf("socket,id=l2,udp=%s,localaddr=%s", l.Peer, l.Local),
		"-device", "virtio-net-pci,netdev=l2,mac=" + l.mac(),
	}
}
