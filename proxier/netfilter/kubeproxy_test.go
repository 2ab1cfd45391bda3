package netfilter

import "testing"

// kube-proxy's iptables-mode chains by name: never one kubevs owns, never the kubelet's, and
// per-Service chains only with kube-proxy's 16-character base32 hash, in nat.
func TestKubeProxyChain(t *testing.T) {
	for _, tc := range []struct {
		table, chain string
		want         bool
	}{
		{"nat", "KUBE-SVC-TCOU7JCQXEZGVUNU", true},
		{"nat", "KUBE-SVL-GNZBNJ2PO5MGZ6GT", true},
		{"nat", "KUBE-EXT-NPX46M4PTMTKRN6Y", true},
		{"nat", "KUBE-FW-GNZBNJ2PO5MGZ6GT", true},
		{"nat", "KUBE-SEP-IT2ZTR26TO4XFPTO", true},
		{"nat", "KUBE-NODEPORTS", true},
		{"filter", "KUBE-NODEPORTS", true},
		{"filter", "KUBE-EXTERNAL-SERVICES", true},
		{"mangle", "KUBE-PROXY-CANARY", true},
		{"nat", "KUBE-PROXY-CANARY", true},
		{"filter", "KUBE-PROXY-CANARY", true},
		// kubevs's own (shared with kube-proxy's modes)
		{"nat", "KUBE-SERVICES", false},
		{"nat", "KUBE-MARK-MASQ", false},
		{"nat", "KUBE-POSTROUTING", false},
		{"nat", "KUBE-EXTERNAL-IP", false},
		{"nat", "KUBE-FIREWALL", false},
		{"filter", "KUBE-SERVICES", false},
		{"filter", "KUBE-FORWARD", false},
		{"filter", "KUBE-PROXY-FIREWALL", false},
		// the kubelet's and others'
		{"filter", "KUBE-FIREWALL", false},
		{"filter", "KUBE-KUBELET-CANARY", false},
		{"nat", "KUBE-KUBELET-CANARY", false},
		{"nat", "KUBE-MARK-DROP", false},
		{"nat", "KUBE-SVC-lowercase", false},
		{"nat", "KUBE-SEP-TOOSHORT", false},
		{"nat", "KUBE-SEP-IT2ZTR26TO4XFPTO8", false},
		{"nat", "KUBE-SVC-0123456789ABCDEF", false}, // 0, 1, 8, 9 are not base32
		{"filter", "KUBE-SVC-TCOU7JCQXEZGVUNU", false},
		{"raw", "KUBE-PROXY-CANARY", false},
	} {
		if got := KubeProxyChain(tc.table, tc.chain); got != tc.want {
			t.Errorf("KubeProxyChain(%s, %s) = %v, want %v", tc.table, tc.chain, got, tc.want)
		}
	}
}
