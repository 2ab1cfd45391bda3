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

	"github.com/kubevs/kubevs/test/bed/netns"
)

// NetworkConfig describes the node's pod network and the outside host.
type NetworkConfig struct {
	// PodCIDR is the node's pod range (Node spec.podCIDRs). Default 10.244.0.0/24.
	PodCIDR string
	// NodeAddr is the node's address on the link to the outside host, in CIDR form; it is the
	// Node's InternalIP. Default 192.168.77.1/24.
	NodeAddr string
	// OutsideAddr is the outside host's address on that link. Default 192.168.77.2/24.
	OutsideAddr string
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
	def(&c.Bridge, "cni0")
	def(&c.CNIVersion, "1.0.0")
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
	// IPAMDataDir is host-local's lease store (one file per allocated IP) when IPAM is default.
	IPAMDataDir string
}

// conflist renders the node's conflist. hairpinMode is deliberately absent: kubevs sets hairpin
// itself, and the bed must not hide a plugin that forgot to.
func (c *NetworkConfig) conflist(ipamDataDir string) ([]byte, error) {
	ipam := c.IPAM
	if ipam == nil {
		ipam = map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]any{{{"subnet": c.PodCIDR}}},
			"routes":  []map[string]any{{"dst": "0.0.0.0/0"}},
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
	return b.setupOutside()
}

// setupOutside creates the outside host: a namespace with a veth to the node on the node's
// subnet and its default route through the node, like another machine on the node's LAN.
func (b *Bed) setupOutside() error {
	c := &b.cfg.Network
	nodeAddr, err := netlink.ParseAddr(c.NodeAddr)
	if err != nil {
		return fmt.Errorf("parse node address %q: %w", c.NodeAddr, err)
	}
	outAddr, err := netlink.ParseAddr(c.OutsideAddr)
	if err != nil {
		return fmt.Errorf("parse outside address %q: %w", c.OutsideAddr, err)
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
	if err := configureLink(outsideLink, nodeAddr, nil); err != nil {
		return err
	}
	return out.Do(func(ns.NetNS) error {
		return configureLink("eth0", outAddr, nodeAddr.IP)
	})
}

// configureLink gives link an address, sets it up and, if gw is set, routes everything via gw.
func configureLink(name string, addr *netlink.Addr, gw net.IP) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("add %s to %s: %w", addr, name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	if gw != nil {
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw}); err != nil {
			return fmt.Errorf("add default route via %s: %w", gw, err)
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
