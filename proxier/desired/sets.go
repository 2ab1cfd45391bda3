package desired

import (
	"strings"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/link"
)

// SetNameList names kubevs's sets in one family. The names are those of kube-proxy's IPVS
// mode, so kubevs adopts (and can clean up) what that mode left behind. Never rename them.
type SetNameList struct {
	// ClusterIP (hash:ip,port) holds "VIP,proto:port" of every Service port.
	ClusterIP string
	// LoopBack (hash:ip,port,ip) holds "podIP,proto:port,podIP" of every local endpoint.
	LoopBack string
	// VIPs (hash:ip) holds every address bound to the dummy link.
	VIPs string

	// NodePortTCP and NodePortUDP (bitmap:port) hold the NodePorts of the protocol;
	// NodePortSCTP (hash:ip,port) holds "nodeIP,sctp:port" per NodePort address. The -Local
	// siblings hold those of Services with externalTrafficPolicy=Local (not masqueraded).
	NodePortTCP, NodePortLocalTCP   string
	NodePortUDP, NodePortLocalUDP   string
	NodePortSCTP, NodePortLocalSCTP string
	// HealthCheckNodePort (bitmap:port) holds the healthCheckNodePort of every Service
	// with externalTrafficPolicy=Local; filter KUBE-NODE-PORT accepts them.
	HealthCheckNodePort string

	// LoadBalancer (hash:ip,port) holds "ingressIP,proto:port" of every LoadBalancer
	// port; LoadBalancerLocal those with externalTrafficPolicy=Local.
	LoadBalancer, LoadBalancerLocal string
	// LoadBalancerFW (hash:ip,port) holds the LoadBalancer ports that have
	// loadBalancerSourceRanges; traffic to them is dropped unless its source is allowed by
	// LoadBalancerSourceCIDR (hash:ip,port,net: "ingressIP,proto:port,range") or
	// LoadBalancerSourceIP (hash:ip,port,ip: "ingressIP,proto:port,ingressIP", the node
	// itself when a range holds a node address).
	LoadBalancerFW, LoadBalancerSourceCIDR, LoadBalancerSourceIP string

	// ExternalIP (hash:ip,port) holds "externalIP,proto:port" (masqueraded);
	// ExternalIPLocal those with externalTrafficPolicy=Local.
	ExternalIP, ExternalIPLocal string
}

// setName is kube-proxy's naming of a set in family f: the IPv4 name as is, the IPv6 name
// with "KUBE-" turned into "KUBE-6-" and cut to the kernel's 31 characters.
func setName(f ipset.Family, v4 string) string {
	if f != ipset.IPv6 {
		return v4
	}
	n := "KUBE-6-" + strings.TrimPrefix(v4, "KUBE-")
	if len(n) > ipset.MaxNameLen {
		n = n[:ipset.MaxNameLen]
	}
	return n
}

// SetNames returns the set names of family f: KUBE-CLUSTER-IP, KUBE-NODE-PORT-TCP and so
// on for IPv4, KUBE-6-* for IPv6 (set names are global across families; the same convention
// as kube-proxy, including its truncation of the two names too long for IPv6).
func SetNames(f ipset.Family) SetNameList {
	n := func(v4 string) string { return setName(f, v4) }
	return SetNameList{
		ClusterIP: n("KUBE-CLUSTER-IP"), LoopBack: n("KUBE-LOOP-BACK"), VIPs: n("KUBE-IPVS-IPS"),
		NodePortTCP: n("KUBE-NODE-PORT-TCP"), NodePortLocalTCP: n("KUBE-NODE-PORT-LOCAL-TCP"),
		NodePortUDP: n("KUBE-NODE-PORT-UDP"), NodePortLocalUDP: n("KUBE-NODE-PORT-LOCAL-UDP"),
		NodePortSCTP: n("KUBE-NODE-PORT-SCTP-HASH"), NodePortLocalSCTP: n("KUBE-NODE-PORT-LOCAL-SCTP-HASH"),
		HealthCheckNodePort: n("KUBE-HEALTH-CHECK-NODE-PORT"),
		LoadBalancer:        n("KUBE-LOAD-BALANCER"), LoadBalancerLocal: n("KUBE-LOAD-BALANCER-LOCAL"),
		LoadBalancerFW:         n("KUBE-LOAD-BALANCER-FW"),
		LoadBalancerSourceCIDR: n("KUBE-LOAD-BALANCER-SOURCE-CIDR"), LoadBalancerSourceIP: n("KUBE-LOAD-BALANCER-SOURCE-IP"),
		ExternalIP: n("KUBE-EXTERNAL-IP"), ExternalIPLocal: n("KUBE-EXTERNAL-IP-LOCAL"),
	}
}

// sets returns the definitions of every set of family f, in a stable order.
func sets(f ipset.Family) []ipset.Set {
	n := SetNames(f)
	hash := func(name string, t ipset.Type, comment string) ipset.Set {
		return ipset.Set{Name: name, Type: t, Family: f, Comment: "kubevs: " + comment}
	}
	ports := func(name, comment string) ipset.Set {
		return ipset.Set{Name: name, Type: ipset.BitmapPort, PortFrom: 0, PortTo: 65535, Comment: "kubevs: " + comment}
	}
	return []ipset.Set{
		hash(n.ClusterIP, ipset.HashIPPort, "ClusterIP,proto:port of every Service port"),
		hash(n.LoopBack, ipset.HashIPPortIP, "local endpoints, for hairpin masquerade"),
		hash(n.VIPs, ipset.HashIP, "addresses bound to "+link.DefaultDummy),
		ports(n.NodePortTCP, "TCP NodePorts"),
		ports(n.NodePortLocalTCP, "TCP NodePorts with externalTrafficPolicy=Local"),
		ports(n.NodePortUDP, "UDP NodePorts"),
		ports(n.NodePortLocalUDP, "UDP NodePorts with externalTrafficPolicy=Local"),
		hash(n.NodePortSCTP, ipset.HashIPPort, "nodeIP,sctp:NodePort"),
		hash(n.NodePortLocalSCTP, ipset.HashIPPort, "nodeIP,sctp:NodePort with externalTrafficPolicy=Local"),
		ports(n.HealthCheckNodePort, "health check node ports"),
		hash(n.LoadBalancer, ipset.HashIPPort, "LoadBalancer ingressIP,proto:port"),
		hash(n.LoadBalancerLocal, ipset.HashIPPort, "LoadBalancer ingressIP,proto:port with externalTrafficPolicy=Local"),
		hash(n.LoadBalancerFW, ipset.HashIPPort, "LoadBalancer ingressIP,proto:port with loadBalancerSourceRanges"),
		hash(n.LoadBalancerSourceCIDR, ipset.HashIPPortNet, "LoadBalancer ingressIP,proto:port,allowed source range"),
		hash(n.LoadBalancerSourceIP, ipset.HashIPPortIP, "LoadBalancer ingressIP,proto:port,ingressIP: the node may connect"),
		hash(n.ExternalIP, ipset.HashIPPort, "externalIP,proto:port"),
		hash(n.ExternalIPLocal, ipset.HashIPPort, "externalIP,proto:port with externalTrafficPolicy=Local"),
	}
}

// OwnedSets lists every set name kubevs may have created, in both families.
func OwnedSets() []string {
	var out []string
	for _, f := range []ipset.Family{ipset.IPv4, ipset.IPv6} {
		for _, s := range sets(f) {
			out = append(out, s.Name)
		}
	}
	return out
}
