// Package desired computes, without any I/O, the kernel state kubevs wants for each Service:
// IPVS virtual servers and their real servers, the virtual IPs bound to the dummy link, and
// the members of kubevs's ipsets. It also describes the fixed, Service-independent state
// (sets, iptables rules, sysctls) in Global.
//
// Everything here is a pure, deterministic function of its arguments; results print as
// stable text (String) so tests compare golden files. The one shared state is SliceOf's
// table of node names and hints, which only decides which equal values share memory. The
// reconcile package is the only code that turns these values into kernel changes.
package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Options are the knobs Compute needs. They hold no I/O handles.
type Options struct {
	// ClusterCIDRs are the pod networks. Traffic to a ClusterIP from outside them is
	// masqueraded. With none and MasqueradeAll false, nothing is masqueraded.
	ClusterCIDRs []netip.Prefix
	// MasqueradeAll masquerades all traffic to ClusterIPs.
	MasqueradeAll bool
	// Scheduler is the global IPVS scheduler; empty means DefaultScheduler.
	Scheduler string
	// Families are the IP families the node serves; empty means IPv4 only. ClusterIPs of
	// other families are skipped with an error.
	Families []ipset.Family
	// StrictARP sets arp_ignore=1 and arp_announce=2 so the node does not answer ARP for
	// the VIPs on the dummy link (see Global).
	StrictARP bool
	// NodePortAddresses are the node addresses NodePorts are served on, computed by the
	// caller from its nodePortAddresses setting. Empty means the node's primary addresses
	// (the first address of each family in Node.Addresses). Loopback addresses are used
	// only when listed here explicitly (IPv4 ones then also set route_localnet; the kernel
	// never routes ::1 off the loopback link, so an IPv6 loopback NodePort answers nothing).
	NodePortAddresses []netip.Addr
	// OnlyNodePortAddresses makes NodePortAddresses the whole list even when it is empty:
	// the caller sets it when a nodePortAddresses setting exists, so CIDRs that match no
	// node address serve NodePorts nowhere (as kube-proxy does) rather than on the primary
	// addresses.
	OnlyNodePortAddresses bool
	// ExternalIPAllowedCIDRs, when not empty, are the only ranges a Service's externalIPs
	// may come from (CVE-2020-8554); an externalIP outside them is skipped and returned as
	// an error. Empty allows all, as kube-proxy does.
	ExternalIPAllowedCIDRs []netip.Prefix
	// DenyAllExternalIPs refuses every externalIP (whatever ExternalIPAllowedCIDRs say).
	DenyAllExternalIPs bool
	// LoadBalancerIngressAllowedCIDRs, when not empty, are the only ranges a LoadBalancer
	// ingress IP may come from; one outside them is refused. Empty allows all.
	LoadBalancerIngressAllowedCIDRs []netip.Prefix
	// Reserved are the addresses no Service may take, whatever the allow-lists say (see
	// guard.go).
	Reserved Reserved
}

// Node is what Compute needs to know about the node it runs on.
type Node struct {
	Name      string
	Labels    map[string]string
	Addresses []netip.Addr
	Zone      string
}

// LocalPods tells whether an address belongs to a pod on this node (registered by the CNI
// plugin). A nil LocalPods knows no pod; endpoints are then local only by nodeName.
type LocalPods interface {
	Has(netip.Addr) bool
}

// PodSet is a LocalPods backed by a map.
type PodSet map[netip.Addr]struct{}

// Has reports whether a is in the set.
func (s PodSet) Has(a netip.Addr) bool { _, ok := s[a]; return ok }

// VirtualServer is one IPVS virtual server with the real servers it should hold, sorted by
// address and port; every real server has weight 1 (weight 0 is the reconciler's drain).
type VirtualServer struct {
	ipvs.VirtualServer
	// RealServers sorted by CompareRealServers, free of duplicates. Never modified once
	// computed: the reconciler may share the list.
	RealServers []RealServer
}

// SetEntry is one member of one of kubevs's ipsets.
type SetEntry struct {
	Set   string
	Entry ipset.Entry
}

func (e SetEntry) String() string { return e.Set + " " + string(e.Entry) }

// Service is the kernel state one Kubernetes Service needs. The zero value (also what an
// ignored Service computes to) needs nothing. All slices are sorted and free of duplicates.
type Service struct {
	// VirtualServers sorted by Key (address, protocol, port).
	VirtualServers []VirtualServer
	// VIPs are the addresses to bind to the dummy link, sorted.
	VIPs []netip.Addr
	// Entries are the ipset members, sorted by set then entry.
	Entries []SetEntry

	// HealthCheckNodePort is the Service's healthCheckNodePort when it has
	// externalTrafficPolicy=Local (0 otherwise): the daemon's health server answers on it
	// with LocalEndpoints, 200 when it is above zero and 503 when it is zero, so external
	// load balancers send traffic only to nodes that have an endpoint. Not kernel state.
	HealthCheckNodePort uint16
	// LocalEndpoints counts the ready endpoints of the Service on this node (distinct
	// addresses, all families).
	LocalEndpoints int
}

// IsZero reports whether the Service needs no kernel state at all (the health check data
// is not kernel state).
func (s Service) IsZero() bool {
	return len(s.VirtualServers) == 0 && len(s.VIPs) == 0 && len(s.Entries) == 0
}

// String prints the state one item per line in a stable order, for logs and golden files.
func (s Service) String() string {
	var b strings.Builder
	for _, vs := range s.VirtualServers {
		fmt.Fprintf(&b, "vs %s\n", vs.VirtualServer)
		for _, rs := range vs.RealServers {
			fmt.Fprintf(&b, "  rs %s\n", rs)
		}
	}
	for _, a := range s.VIPs {
		fmt.Fprintf(&b, "vip %s\n", a)
	}
	for _, e := range s.Entries {
		fmt.Fprintf(&b, "set %s\n", e)
	}
	if s.HealthCheckNodePort != 0 {
		fmt.Fprintf(&b, "health-check-node-port %d local-endpoints %d\n", s.HealthCheckNodePort, s.LocalEndpoints)
	}
	return b.String()
}

// CompareKeys orders virtual server keys by address, protocol, then port.
func CompareKeys(a, b ipvs.Key) int {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Protocol), string(b.Protocol)); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

// CompareEntries orders set entries by set name, then entry.
func CompareEntries(a, b SetEntry) int {
	if c := strings.Compare(a.Set, b.Set); c != 0 {
		return c
	}
	return strings.Compare(string(a.Entry), string(b.Entry))
}

// sortService puts every slice of s in its canonical order and drops duplicates.
func sortService(s *Service) {
	slices.SortFunc(s.VirtualServers, func(a, b VirtualServer) int { return CompareKeys(a.Key, b.Key) })
	s.VirtualServers = slices.CompactFunc(s.VirtualServers, func(a, b VirtualServer) bool { return a.Key == b.Key })
	slices.SortFunc(s.VIPs, netip.Addr.Compare)
	s.VIPs = slices.Compact(s.VIPs)
	slices.SortFunc(s.Entries, CompareEntries)
	s.Entries = slices.Compact(s.Entries)
}
