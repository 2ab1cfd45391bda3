package reconcile

import (
	"net/netip"
	"strconv"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// marks are the set members that mark a virtual server as kubevs's, beyond the addresses
// bound to the dummy link: NodePort virtual servers sit on node addresses, which kubevs
// never binds (nor, when an externalIP or LoadBalancer IP is a node address, those).
//
//   - keys: "addr,proto:port" members of the sets that hold virtual server keys
//     (cluster IPs, externalIPs, LoadBalancer ingress, SCTP NodePorts).
//   - ports: the TCP and UDP NodePorts (bitmap:port sets hold no address): a virtual server
//     of that protocol and port, on any address of the set's family outside ExcludeCIDRs,
//     is kubevs's. A foreign virtual server on a node address and a NodePort would clash
//     with the Service anyway; ExcludeCIDRs protects any other.
type marks struct {
	keys  map[string]struct{}
	ports map[portMark]struct{}
}

type portMark struct {
	family ipset.Family
	proto  ipvs.Protocol
	port   string
}

// markSets maps each set whose members mark virtual servers to what its members mean.
var markSets = func() map[string]portMark {
	out := map[string]portMark{}
	for _, f := range []ipset.Family{ipset.IPv4, ipset.IPv6} {
		n := desired.SetNames(f)
		for _, s := range []string{n.ClusterIP, n.ExternalIP, n.ExternalIPLocal, n.LoadBalancer, n.NodePortSCTP} {
			out[s] = portMark{family: f}
		}
		out[n.NodePortTCP] = portMark{family: f, proto: ipvs.TCP}
		out[n.NodePortUDP] = portMark{family: f, proto: ipvs.UDP}
	}
	return out
}()

func newMarks() marks {
	return marks{keys: map[string]struct{}{}, ports: map[portMark]struct{}{}}
}

// marksVS reports whether the members of set may mark virtual servers.
func marksVS(set string) bool { _, ok := markSets[set]; return ok }

// add records member e of set, if the set is one that marks virtual servers.
func (m marks) add(set string, e ipset.Entry) {
	pm, ok := markSets[set]
	switch {
	case !ok:
	case pm.proto == "":
		m.keys[string(e)] = struct{}{}
	default:
		pm.port = string(e)
		m.ports[pm] = struct{}{}
	}
}

// has reports whether a member marks k.
func (m marks) has(k ipvs.Key) bool {
	if _, ok := m.keys[protoEntry(k)]; ok {
		return true
	}
	if k.Protocol != ipvs.TCP && k.Protocol != ipvs.UDP {
		return false
	}
	f := ipset.IPv4
	if k.Address.Is6() {
		f = ipset.IPv6
	}
	_, ok := m.ports[portMark{family: f, proto: k.Protocol, port: portString(k.Port)}]
	return ok
}

// owned reports whether the virtual server k is kubevs's: not excluded, and bound to the
// dummy link, marked by a set member, or wanted by a Service.
func owned(k ipvs.Key, bound *refs[netip.Addr], mk marks, wanted map[ipvs.Key]owner, exclude []netip.Prefix) bool {
	if excluded(k.Address, exclude) {
		return false
	}
	if bound.has(k.Address) {
		return true
	}
	if mk.has(k) {
		return true
	}
	_, ok := wanted[k]
	return ok
}

func portString(p uint16) string { return strconv.Itoa(int(p)) }
