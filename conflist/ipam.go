package conflist

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
)

// DefaultIPAMDataDir is where kubevs-ipam keeps its reservations, one directory per network.
const DefaultIPAMDataDir = "/var/lib/kubevs/ipam"

// IPAMConf is the "ipam" stanza of kubevs-ipam. It is decoded strictly; the network
// configuration around it belongs to the main plugin (bridge) and is read leniently.
type IPAMConf struct {
	// Type must be IPAMType.
	Type string `json:"type"`
	// DataDir holds the reservations. Default: DefaultIPAMDataDir.
	DataDir string `json:"dataDir,omitempty"`
	// NodeAPISocket is the proxier's node API, asked first for the Node's podCIDRs.
	// Default: DefaultProxierSocket.
	NodeAPISocket string `json:"nodeAPISocket,omitempty"`
	// Kubeconfig, when set, lets kubevs-ipam read its Node from the API server when the
	// proxier does not answer.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// NodeName is the Node whose spec.podCIDRs are used. Default: the host name, lowercased.
	NodeName string `json:"nodeName,omitempty"`
	// Ranges are static pod CIDRs (at most one per IP family), used when neither the proxier
	// nor the API server answers.
	Ranges []string `json:"ranges,omitempty"`
	// Routes are returned with every allocation. Nil: a default route for each family
	// allocated (0.0.0.0/0, ::/0); an empty list: no routes. omitzero, not omitempty: an
	// encoded empty list must stay "routes":[] (found by FuzzDecodeIPAM).
	Routes []Route `json:"routes,omitzero"`
}

// Route is one route returned to the runtime. GW empty: via the range's gateway.
type Route struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

// IPAMNetConf is what kubevs-ipam reads on stdin: the main plugin's configuration, of which
// only these fields matter.
type IPAMNetConf struct {
	CNIVersion       string
	Name             string
	IPAM             IPAMConf
	ValidAttachments []types.GCAttachment
}

// DecodeIPAM decodes the network configuration a main plugin passes to kubevs-ipam: the
// outer object leniently (it holds the main plugin's own fields), the "ipam" object
// strictly. Defaults are applied and the result validated.
func DecodeIPAM(data []byte) (*IPAMNetConf, error) {
	var outer struct {
		CNIVersion       string               `json:"cniVersion"`
		Name             string               `json:"name"`
		IPAM             json.RawMessage      `json:"ipam"`
		ValidAttachments []types.GCAttachment `json:"cni.dev/valid-attachments"`
	}
	if err := json.Unmarshal(data, &outer); err != nil {
		return nil, fmt.Errorf("decode network configuration: %w", err)
	}
	if len(outer.IPAM) == 0 {
		return nil, fmt.Errorf("network configuration has no \"ipam\" object")
	}
	n := &IPAMNetConf{CNIVersion: outer.CNIVersion, Name: outer.Name, ValidAttachments: outer.ValidAttachments}
	if err := DecodeStrict(outer.IPAM, &n.IPAM); err != nil {
		return nil, fmt.Errorf("decode ipam configuration: %w", err)
	}
	if n.Name == "" {
		return nil, fmt.Errorf("network configuration: name is empty")
	}
	if err := validName(n.Name); err != nil {
		return nil, err
	}
	n.IPAM.SetDefaults()
	if err := n.IPAM.Validate(); err != nil {
		return nil, fmt.Errorf("invalid ipam configuration: %w", err)
	}
	return n, nil
}

// validName checks that a network name can name a directory (the store keeps one per network).
func validName(name string) error {
	if name == "." || name == ".." || len(name) > 255 {
		return fmt.Errorf("network name %q cannot name a directory", name)
	}
	for _, r := range name {
		if r == '/' || r == 0 {
			return fmt.Errorf("network name %q holds %q", name, r)
		}
	}
	return nil
}

// SetDefaults fills unset fields with their defaults (NodeName is left to the plugin, which
// knows the host). It is idempotent.
func (c *IPAMConf) SetDefaults() {
	if c.DataDir == "" {
		c.DataDir = DefaultIPAMDataDir
	}
	if c.NodeAPISocket == "" {
		c.NodeAPISocket = DefaultProxierSocket
	}
}

// Validate checks a defaulted configuration.
func (c *IPAMConf) Validate() error {
	if c.Type != IPAMType {
		return fmt.Errorf("type: %q, want %q", c.Type, IPAMType)
	}
	if err := ValidatePath("dataDir", c.DataDir); err != nil {
		return err
	}
	if err := ValidatePath("nodeAPISocket", c.NodeAPISocket); err != nil {
		return err
	}
	if err := validAbs("kubeconfig", c.Kubeconfig); err != nil {
		return err
	}
	if _, err := ParseRanges(c.Ranges); err != nil {
		return fmt.Errorf("ranges: %w", err)
	}
	for i, r := range c.Routes {
		if _, err := netip.ParsePrefix(r.Dst); err != nil {
			return fmt.Errorf("routes[%d].dst: %w", i, err)
		}
		if r.GW != "" {
			if _, err := netip.ParseAddr(r.GW); err != nil {
				return fmt.Errorf("routes[%d].gw: %w", i, err)
			}
		}
	}
	return nil
}

// ParseRanges parses pod CIDRs: at most one per IP family, each large enough for a gateway
// and one pod (IPv4 /30 or shorter, IPv6 /126 or shorter). Host bits are cleared.
func ParseRanges(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	seen := map[bool]bool{}
	for i, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		if err := CheckRange(p); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		if seen[p.Addr().Is4()] {
			return nil, fmt.Errorf("[%d]: %s: a second range of the same IP family", i, s)
		}
		seen[p.Addr().Is4()] = true
		out = append(out, p.Masked())
	}
	return out, nil
}

// CheckRange checks that p can serve pods: a plain IPv4 or IPv6 prefix with room for the
// network address, a gateway, one pod and (IPv4) the broadcast address.
func CheckRange(p netip.Prefix) error {
	if p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return fmt.Errorf("%s: not a plain IPv4 or IPv6 prefix", p)
	}
	if p.Bits() > p.Addr().BitLen()-2 {
		return fmt.Errorf("%s: too small for a gateway and a pod", p)
	}
	return nil
}
