package netfilter

import "slices"

// ownedChains lists, per table, every chain kubevs owns. Ensure writes only these (and the jump
// rules into built-in chains that lead to them), deletes them when they are no longer wanted,
// and Cleanup removes them. Nothing else is ever flushed or deleted.
//
// The names follow kube-proxy's IPVS mode, which kubevs replaces, so that kubevs adopts (and
// can clean up) what that mode left behind. Never add a chain another component writes:
// the kubelet's filter KUBE-FIREWALL and KUBE-KUBELET-CANARY, kube-proxy's KUBE-PROXY-CANARY,
// or kube-proxy's iptables-mode per-service chains (KUBE-SVC-*, KUBE-SEP-*, ...).
// Adding a name here is a compatible change; removing one orphans that chain on upgraded nodes.
var ownedChains = map[string][]string{
	"nat": {
		"KUBE-SERVICES",      // PREROUTING/OUTPUT: Service traffic entry point
		"KUBE-POSTROUTING",   // POSTROUTING: masquerade marked packets, hairpin
		"KUBE-MARK-MASQ",     // mark a packet for masquerading
		"KUBE-NODE-PORT",     // NodePort traffic
		"KUBE-LOAD-BALANCER", // LoadBalancer traffic
		"KUBE-EXTERNAL-IP",   // ExternalIPs traffic
		"KUBE-LOOP-BACK",     // pods reaching themselves through a Service
		"KUBE-CLUSTER-IP",    // ClusterIP traffic
		"KUBE-FIREWALL",      // LoadBalancer source ranges (nat: kube-proxy IPVS mode's own)
	},
	"filter": {
		"KUBE-SERVICES",               // accept Service traffic before host firewalls drop it
		"KUBE-FORWARD",                // FORWARD: accept marked and tracked Service flows
		"KUBE-NODE-PORT",              // NodePort accept
		"KUBE-CLUSTER-IP",             // ClusterIP accept
		"KUBE-IPVS-FILTER",            // INPUT: drop non-Service ports on ClusterIPs (k/k#72236)
		"KUBE-IPVS-OUT-FILTER",        // OUTPUT: the same for locally generated traffic
		"KUBE-PROXY-FIREWALL",         // LoadBalancer source ranges
		"KUBE-SOURCE-RANGES-FIREWALL", // LoadBalancer source ranges drop
	},
}

// builtinChains are the chains of each table that Jump.From may name.
var builtinChains = map[string][]string{
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":    {"PREROUTING", "OUTPUT"},
}

// Owned reports whether kubevs owns chain in table.
func Owned(table, chain string) bool { return slices.Contains(ownedChains[table], chain) }

// OwnedChains returns the chains kubevs owns in table (nil for a table it does not use).
func OwnedChains(table string) []string { return slices.Clone(ownedChains[table]) }

// Tables returns the tables that hold chains kubevs owns, sorted.
func Tables() []string { return []string{"filter", "nat"} }

// Builtin reports whether chain is a built-in chain of table.
func Builtin(table, chain string) bool { return slices.Contains(builtinChains[table], chain) }
