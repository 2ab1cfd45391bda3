package bed

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/test/bed/netns"
)

// NetworkConfig describes the node's pod network and the outside host. The node is
// dual-stack unless IPv4Only is set: every IPv4 setting has an IPv6 twin, listed second
// wherever Kubernetes lists both (spec.podCIDRs, status.addresses, the service range).
type NetworkConfig struct {
	// PodCIDR is the node's IPv4 pod range (Node spec.podCIDR, first of spec.podCIDRs).
	// Default 10.244.0.0/24.
	PodCIDR string
	// PodCIDRv6 is the node's IPv6 pod range (second of spec.podCIDRs). Default fd00:244::/64.
	PodCIDRv6 string
	// NodeAddr is the node's IPv4 address on the link to the outside host, in CIDR form; it is
	// the Node's first InternalIP. Default 192.168.77.1/24.
	NodeAddr string
	// NodeAddrV6 is the node's IPv6 address on that link, its second InternalIP.
	// Default fd00:77::1/64.
	NodeAddrV6 string
	// OutsideAddr is the outside host's IPv4 address on that link. Default 192.168.77.2/24.
	OutsideAddr string
	// OutsideAddrV6 is the outside host's IPv6 address on that link. Default fd00:77::2/64.
	OutsideAddrV6 string
	// IPv4Only makes a single-stack IPv4 node, as the bed was before it was dual-stack: the
	// IPv6 settings are cleared, and the API server's service range is IPv4 only.
	IPv4Only bool
	// Bridge is the pod bridge the bridge plugin creates. Default cni0.
	Bridge string
	// CNIBinDirs are searched, in order, for CNI plugins: the reference bridge, host-local,
	// portmap and loopback, and kubevs's plugins when Chain or IPAM name them.
	CNIBinDirs []string
	// CNIVersion of the generated conflist. Default 1.0.0.
	CNIVersion string
	// IPAM replaces the bridge plugin's ipam section (e.g. {"type": "kubevs-ipam", ...}).
	// Nil means host-local over PodCIDR, storing its leases in the bed's work dir.
	IPAM map[string]any
	// Chain holds plugin configs appended after portmap (e.g. {"type": "kubevs", ...}).
	Chain []map[string]any
}

func (c *NetworkConfig) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.PodCIDR, "10.244.0.0/24")
	def(&c.NodeAddr, "192.168.77.1/24")
	def(&c.OutsideAddr, "192.168.77.2/24")
	if c.IPv4Only {
		c.PodCIDRv6, c.NodeAddrV6, c.OutsideAddrV6 = "", "", ""
	} else {
		def(&c.PodCIDRv6, "fd00:244::/64")
		def(&c.NodeAddrV6, "fd00:77::1/64")
		def(&c.OutsideAddrV6, "fd00:77::2/64")
	}
	def(&c.Bridge, "cni0")
	def(&c.CNIVersion, "1.0.0")
}

// PodCIDRs are the node's pod ranges as spec.podCIDRs lists them (IPv4 first), defaults
// applied.
func (c NetworkConfig) PodCIDRs() []string {
	c.setDefaults()
	return nonEmpty(c.PodCIDR, c.PodCIDRv6)
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// NetworkName is the name of the bed's CNI network.
const NetworkName = "kubevs-bed"

// outsideLink is the node's end of the veth pair to the outside host.
const outsideLink = "kvs-outside"

// Network is the node's CNI setup: what a container runtime would read from /etc/cni/net.d.
type Network struct {
	// ConfList is the generated conflist, also written to ConfListPath.
	ConfList     *libcni.NetworkConfigList
	ConfListPath string
	// Loopback is the config of the loopback plugin, run for every pod before ConfList.
	Loopback *libcni.PluginConfig
	// CNI executes plugins from the configured bin dirs, caching results in the bed's dir.
	CNI *libcni.CNIConfig
	// IPAMDataDir is host-local's lease store (one file per allocated IP) when IPAM is
	// default; empty when NetworkConfig.IPAM names another plugin.
	IPAMDataDir string
}

// conflist renders the node's conflist. hairpinMode is deliberately absent: kubevs sets hairpin
// itself, and the bed must not hide a plugin that forgot to.
func (c *NetworkConfig) conflist(ipamDataDir string) ([]byte, error) {
	ipam := c.IPAM
	if ipam == nil {
		// One range set per family: host-local hands out one address of each.
		ranges := [][]map[string]any{{{"subnet": c.PodCIDR}}}
		routes := []map[string]any{{"dst": "0.0.0.0/0"}}
		if c.PodCIDRv6 != "" {
			ranges = append(ranges, []map[string]any{{"subnet": c.PodCIDRv6}})
			routes = append(routes, map[string]any{"dst": "::/0"})
		}
		ipam = map[string]any{
			"type":    "host-local",
			"ranges":  ranges,
			"routes":  routes,
			"dataDir": ipamDataDir,
		}
	}
	plugins := []map[string]any{
		{"type": "bridge", "bridge": c.Bridge, "isGateway": true, "ipMasq": false, "ipam": ipam},
		{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
	}
	plugins = append(plugins, c.Chain...)
	return json.MarshalIndent(map[string]any{
		"cniVersion": c.CNIVersion,
		"name":       NetworkName,
		"plugins":    plugins,
	}, "", "  ")
}

// setupNetwork writes the conflist and prepares the node: forwarding on, and the outside host.
func (b *Bed) setupNetwork() error {
	c := &b.cfg.Network
	dir := filepath.Join(b.Dir, "cni")
	n := &Network{IPAMDataDir: filepath.Join(dir, "ipam"), ConfListPath: filepath.Join(dir, "net.d", "10-"+NetworkName+".conflist")}
	data, err := c.conflist(n.IPAMDataDir)
	if err != nil {
		return fmt.Errorf("render conflist: %w", err)
	}
	if c.IPAM != nil {
		n.IPAMDataDir = ""
	}
	if err := os.MkdirAll(filepath.Dir(n.ConfListPath), 0o755); err != nil {
		return fmt.Errorf("create conf dir: %w", err)
	}
	if err := os.WriteFile(n.ConfListPath, data, 0o644); err != nil {
		return fmt.Errorf("write conflist: %w", err)
	}
	if n.ConfList, err = libcni.ConfListFromBytes(data); err != nil {
		return fmt.Errorf("parse generated conflist: %w", err)
	}
	lo := fmt.Sprintf(`{"cniVersion": %q, "name": "cni-loopback", "type": "loopback"}`, c.CNIVersion)
	if n.Loopback, err = libcni.NetworkPluginConfFromBytes([]byte(lo)); err != nil {
		return fmt.Errorf("parse loopback conf: %w", err)
	}
	n.CNI = libcni.NewCNIConfigWithCacheDir(c.CNIBinDirs, filepath.Join(dir, "cache"), nil)
	b.Network = n

	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable forwarding: %w", err)
	}
	if c.PodCIDRv6 != "" {
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0o644); err != nil {
			return fmt.Errorf("enable IPv6 forwarding: %w", err)
		}
	}
	return b.setupOutside()
}

// setupOutside creates the outside host: a namespace with a veth to the node on the node's
// subnet (one per family) and its default routes through the node, like another machine on
// the node's LAN. It thus reaches the pod and service ranges of both families via the node.
func (b *Bed) setupOutside() error {
	c := &b.cfg.Network
	nodeAddrs, err := parseAddrs(c.NodeAddr, c.NodeAddrV6)
	if err != nil {
		return fmt.Errorf("parse node address: %w", err)
	}
	outAddrs, err := parseAddrs(c.OutsideAddr, c.OutsideAddrV6)
	if err != nil {
		return fmt.Errorf("parse outside address: %w", err)
	}
	if len(nodeAddrs) != len(outAddrs) {
		return fmt.Errorf("node addresses %v and outside addresses %v: want one of each family on both", nodeAddrs, outAddrs)
	}
	out, err := netns.New(b.prefix + "-outside")
	if err != nil {
		return err
	}
	b.Outside = out
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: outsideLink},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(int(out.Fd())),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", outsideLink, err)
	}
	if err := configureLink(outsideLink, nodeAddrs, nil); err != nil {
		return err
	}
	gws := make([]net.IP, len(nodeAddrs))
	for i, a := range nodeAddrs {
		gws[i] = a.IP
	}
	return out.Do(func(ns.NetNS) error {
		return configureLink("eth0", outAddrs, gws)
	})
}

// parseAddrs parses the non-empty addresses among cidrs. IPv6 ones are marked nodad, so
// they are usable at once instead of after duplicate address detection.
func parseAddrs(cidrs ...string) ([]*netlink.Addr, error) {
	var out []*netlink.Addr
	for _, s := range nonEmpty(cidrs...) {
		a, err := netlink.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", s, err)
		}
		if a.IP.To4() == nil {
			a.Flags |= unix.IFA_F_NODAD
		}
		out = append(out, a)
	}
	return out, nil
}

// configureLink gives link its addresses, sets it up and routes everything via each of gws
// (a default route per family).
func configureLink(name string, addrs []*netlink.Addr, gws []net.IP) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	for _, addr := range addrs {
		if err := netlink.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("add %s to %s: %w", addr, name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	for _, gw := range gws {
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw}); err != nil {
			return fmt.Errorf("add default route via %s on %s: %w", gw, name, err)
		}
	}
	return nil
}

// teardownNetwork removes what setupNetwork made in the node namespace. Links the bridge
// plugin created (the bridge itself) are removed too, so a bed can start again in the same
// namespace.
func (b *Bed) teardownNetwork() error {
	var errs []error
	for _, name := range []string{outsideLink, b.cfg.Network.Bridge} {
		if l, err := netlink.LinkByName(name); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete link %s: %w", name, err))
			}
		}
	}
	if b.Outside != nil {
		if err := b.Outside.Delete(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
