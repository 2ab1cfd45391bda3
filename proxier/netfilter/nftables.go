package netfilter

// KubeProxyNFTable is the nftables table kube-proxy's nftables mode writes, once in family
// ip and once in ip6. Its chains hook prerouting and output at the dstnat priority and DNAT
// every Service to the endpoints they held when kube-proxy last synced: as long as the table
// exists, Service traffic never reaches IPVS, and no change of endpoints is followed.
// kube-proxy's own IPVS mode deletes these tables when it starts; kubevs does the same once
// its own virtual servers are in place (reconcile), so that the switch from kube-proxy's
// nftables mode has no gap.
const KubeProxyNFTable = "kube-proxy"

// NFTables removes what kube-proxy's nftables mode left on the node. It is the only write
// kubevs makes to nftables outside iptables's own tables.
type NFTables interface {
	// RemoveKubeProxyTables deletes the tables KubeProxyNFTable of families ip and ip6 with
	// everything in them, and returns those that existed ("ip kube-proxy"). A missing table,
	// or a kernel without nftables, is not an error.
	RemoveKubeProxyTables() (removed []string, err error)
}
