package derive

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
)

// APIServerService is the Service whose EndpointSlices list the API server's endpoints.
var APIServerService = types.NamespacedName{Namespace: "default", Name: "kubernetes"}

// APIServers returns the API server's endpoints for desired.Reserved, sorted and unique:
// the host of the kubeconfig the proxier uses (host, as rest.Config.Host spells it:
// "https://192.168.1.2:6443", "192.168.1.2:6443"; a host name is not resolved and adds
// nothing) and every address of the endpoints of the default/kubernetes EndpointSlices (eps;
// slices of other Services are ignored), with each TCP port of their slice.
func APIServers(host string, eps []*desired.Slice) []netip.AddrPort {
	var out []netip.AddrPort
	if ap, ok := hostEndpoint(host); ok {
		out = append(out, ap)
	}
	for _, s := range eps {
		if s == nil || s.Namespace != APIServerService.Namespace || s.Service != APIServerService.Name {
			continue
		}
		addrs := slices.Clone(s.Others)
		for _, e := range s.Endpoints {
			addrs = append(addrs, e.Addr())
		}
		for _, a := range addrs {
			for _, p := range s.Ports {
				if p.HasPort && p.Port > 0 && p.Port <= 65535 && p.Protocol == v1.ProtocolTCP {
					out = append(out, netip.AddrPortFrom(a, uint16(p.Port)))
				}
			}
		}
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return slices.Compact(out)
}

// hostEndpoint parses the address and port of a kubeconfig server URL whose host is an IP
// address (the default port of its scheme when it names none).
func hostEndpoint(host string) (netip.AddrPort, bool) {
	if host == "" {
		return netip.AddrPort{}, false
	}
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	if err != nil {
		return netip.AddrPort{}, false
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return netip.AddrPort{}, false
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(n)), true
}

// ClusterIPIndex knows the ClusterIPs of every Service it was told of; it is the
// desired.AddrSet of desired.Reserved.ClusterIPs. The zero value is empty and ready. It is
// not safe for concurrent use.
type ClusterIPIndex struct {
	// byName holds the Service each name was last set to, when that holds a ClusterIP: its
	// addresses are parsed again when it is replaced rather than kept, since the object is
	// held anyway (the informer's): a slice of addresses per Service was 0.4 MB of the
	// proxier's heap at 10,000 Services.
	byName map[types.NamespacedName]*desired.APIService
	count  map[netip.Addr]int
	gen    uint64
}

// Generation changes whenever an address joins or leaves the index, so a cache of results
// computed against it can tell they may be stale.
func (x *ClusterIPIndex) Generation() uint64 { return x.gen }

// Set records the ClusterIPs of svc under name, replacing what name held; a nil svc
// forgets name. Headless Services hold none. The index keeps svc: it must not be modified
// afterwards (as an informer's objects are not).
func (x *ClusterIPIndex) Set(name types.NamespacedName, svc *desired.APIService) {
	if x.byName == nil {
		x.byName, x.count = map[types.NamespacedName]*desired.APIService{}, map[netip.Addr]int{}
	}
	var buf [2]netip.Addr // one per family: what the API allows
	if old, ok := x.byName[name]; ok {
		for _, a := range clusterIPsOf(old, buf[:0]) {
			if x.count[a]--; x.count[a] <= 0 {
				delete(x.count, a)
				x.gen++
			}
		}
		delete(x.byName, name)
	}
	if svc == nil {
		return
	}
	mine := clusterIPsOf(svc, buf[:0])
	for _, a := range mine {
		if x.count[a]++; x.count[a] == 1 {
			x.gen++
		}
	}
	if len(mine) > 0 {
		x.byName[name] = svc
	}
}

// clusterIPsOf appends to out the distinct ClusterIPs of svc, unmapped: spec.clusterIPs,
// or spec.clusterIP for objects that predate dual-stack. "", "None" and garbage hold no
// address.
func clusterIPsOf(svc *desired.APIService, out []netip.Addr) []netip.Addr {
	for _, s := range desired.ClusterIPs(svc) {
		a, err := netip.ParseAddr(s)
		if err != nil || slices.Contains(out, a.Unmap()) {
			continue
		}
		out = append(out, a.Unmap())
	}
	return out
}

// Reset forgets every Service. The generation still moves on (it never goes back), so a
// cache stamped with an earlier generation does not match an index rebuilt to the same
// number of addresses.
func (x *ClusterIPIndex) Reset() {
	clear(x.byName)
	clear(x.count)
	x.gen++
}

// Has reports whether a is the ClusterIP of a Service.
func (x *ClusterIPIndex) Has(a netip.Addr) bool { return x.count[a.Unmap()] > 0 }

// Len returns the number of distinct ClusterIPs known.
func (x *ClusterIPIndex) Len() int { return len(x.count) }
