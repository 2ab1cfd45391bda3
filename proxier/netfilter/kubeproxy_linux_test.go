//go:build linux

package netfilter

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// kubeProxyIPTablesState is what kube-proxy's iptables mode writes on a node (a DNS Service,
// a NodePort with an external chain, a LoadBalancer with its firewall chain and a
// local-traffic chain, a Service without endpoints) next to the kubelet's chains and other
// agents' ones: FOREIGN-LB still jumps to one Service chain, which must then stay with the
// endpoint chain it jumps to, and two chains only look like kube-proxy's. ep is an endpoint
// address and vip a ClusterIP of the family.
func kubeProxyIPTablesState(ep, vip string) string {
	return strings.Join([]string{
		"*mangle",
		":KUBE-PROXY-CANARY - [0:0]",
		":KUBE-KUBELET-CANARY - [0:0]",
		"COMMIT",
		"*nat",
		":KUBE-SERVICES - [0:0]",
		":KUBE-NODEPORTS - [0:0]",
		":KUBE-POSTROUTING - [0:0]",
		":KUBE-MARK-MASQ - [0:0]",
		":KUBE-MARK-DROP - [0:0]",
		":KUBE-PROXY-CANARY - [0:0]",
		":KUBE-KUBELET-CANARY - [0:0]",
		":KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]",
		":KUBE-SEP-IT2ZTR26TO4XFPTO - [0:0]",
		":KUBE-SEP-ZXMNUKOKXUTL2MK2 - [0:0]",
		":KUBE-EXT-NPX46M4PTMTKRN6Y - [0:0]",
		":KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]",
		":KUBE-FW-GNZBNJ2PO5MGZ6GT - [0:0]",
		":KUBE-SVL-GNZBNJ2PO5MGZ6GT - [0:0]",
		":KUBE-SVC-KEPTBYFOREIGNLB2 - [0:0]",
		":KUBE-SEP-KEPTBYFOREIGNLB2 - [0:0]",
		":KUBE-SVC-lowercase - [0:0]",
		":KUBE-SEP-TOOSHORT - [0:0]",
		":FOREIGN-LB - [0:0]",
		`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		"-A PREROUTING -j FOREIGN-LB",
		`-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		`-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`,
		"-A KUBE-SERVICES -d " + vip + " -p udp -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU",
		`-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
		"-A KUBE-NODEPORTS -p tcp -m tcp --dport 30080 -j KUBE-EXT-NPX46M4PTMTKRN6Y",
		"-A KUBE-EXT-NPX46M4PTMTKRN6Y -j KUBE-MARK-MASQ",
		"-A KUBE-EXT-NPX46M4PTMTKRN6Y -j KUBE-SVC-NPX46M4PTMTKRN6Y",
		"-A KUBE-SVC-NPX46M4PTMTKRN6Y -j KUBE-SEP-ZXMNUKOKXUTL2MK2",
		"-A KUBE-SVC-TCOU7JCQXEZGVUNU -m statistic --mode random --probability 0.5 -j KUBE-SEP-IT2ZTR26TO4XFPTO",
		"-A KUBE-SVC-TCOU7JCQXEZGVUNU -j KUBE-SEP-ZXMNUKOKXUTL2MK2",
		"-A KUBE-SEP-IT2ZTR26TO4XFPTO -s " + ep + " -j KUBE-MARK-MASQ",
		"-A KUBE-SEP-IT2ZTR26TO4XFPTO -p udp -m udp -j DNAT --to-destination " + bracket(ep) + ":53",
		"-A KUBE-SEP-ZXMNUKOKXUTL2MK2 -p tcp -m tcp -j DNAT --to-destination " + bracket(ep) + ":8080",
		"-A KUBE-FW-GNZBNJ2PO5MGZ6GT -j KUBE-SVL-GNZBNJ2PO5MGZ6GT",
		"-A KUBE-SVL-GNZBNJ2PO5MGZ6GT -j KUBE-SEP-ZXMNUKOKXUTL2MK2",
		"-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
		"-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
		"-A FOREIGN-LB -p tcp -m tcp --dport 9999 -j KUBE-SVC-KEPTBYFOREIGNLB2",
		"-A KUBE-SVC-KEPTBYFOREIGNLB2 -j KUBE-SEP-KEPTBYFOREIGNLB2",
		"-A KUBE-SEP-KEPTBYFOREIGNLB2 -j RETURN",
		"COMMIT",
		"*filter",
		":KUBE-FIREWALL - [0:0]",
		":KUBE-KUBELET-CANARY - [0:0]",
		":KUBE-PROXY-CANARY - [0:0]",
		":KUBE-SERVICES - [0:0]",
		":KUBE-EXTERNAL-SERVICES - [0:0]",
		":KUBE-NODEPORTS - [0:0]",
		":KUBE-FORWARD - [0:0]",
		":KUBE-PROXY-FIREWALL - [0:0]",
		":CALI-FORWARD - [0:0]",
		`-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL`,
		`-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS`,
		`-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`,
		"-A INPUT -j KUBE-FIREWALL",
		`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL`,
		`-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`,
		`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		`-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`,
		"-A FORWARD -j CALI-FORWARD",
		`-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL`,
		`-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		"-A OUTPUT -j KUBE-FIREWALL",
		"-A KUBE-FIREWALL -j DROP",
		`-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "default/empty has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 31000 -j REJECT`,
		`-A KUBE-NODEPORTS -p tcp -m comment --comment "default/lb health check node port" -m tcp --dport 32000 -j ACCEPT`,
		"-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
		"-A KUBE-SERVICES -d " + vip + " -p tcp -m tcp --dport 81 -j REJECT",
		"-A CALI-FORWARD -j ACCEPT",
		"COMMIT",
	}, "\n") + "\n"
}

// kubevsRuleset is the part of kubevs's rules that shares names with kube-proxy's iptables
// mode, without sets.
func kubevsRuleset() Ruleset {
	rs := ruleset("0x4000")
	for i := range rs.Chains {
		for j, r := range rs.Chains[i].Rules {
			if strings.Contains(r, "--match-set") {
				rs.Chains[i].Rules[j] = "-j RETURN"
			}
		}
	}
	return rs
}

func bracket(addr string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]"
	}
	return addr
}

// layout is a table as chains (sorted) and the targets of its built-in chains' rules
// ("FROM>TARGET", in order), with the rules of every other chain.
type layout struct {
	Chains []string
	Jumps  []string
	Rules  map[string][]string
}

func readLayout(t *testing.T, l *Linux, family Family, name string) layout {
	t.Helper()
	cur, err := parseSave(save(t, l, family, name), name)
	if err != nil {
		t.Fatal(err)
	}
	out := layout{Chains: slices.Sorted(slices.Values(cur.chains)), Rules: map[string][]string{}}
	for _, c := range cur.chains {
		for _, r := range cur.rules[c] {
			if Builtin(name, c) {
				out.Jumps = append(out.Jumps, c+">"+target(r))
			} else {
				out.Rules[c] = append(out.Rules[c], r)
			}
		}
	}
	return out
}

// The takeover from kube-proxy's iptables mode, on real iptables in both backends and both
// families: kube-proxy's state, kubevs's Ensure, then RemoveKubeProxyChains. Exactly
// kube-proxy's chains kubevs does not use go, with the built-in rules that jump to them;
// the kubelet's chains, other agents' chains (and the kube-proxy chains they still use),
// look-alikes and kubevs's own chains stay, rule for rule.
func TestRemoveKubeProxyChainsOnRealIPTables(t *testing.T) {
	backends(t, func(t *testing.T, l *Linux) {
		for _, fam := range []struct {
			family  Family
			ep, vip string
		}{{ipset.IPv4, "10.244.1.5", "10.96.0.10"}, {ipset.IPv6, "fd00:244::5", "fd00:96::10"}} {
			tl, _ := l.tools(fam.family)
			cmd := exec.Command(tl.restore, "--noflush")
			cmd.Stdin = strings.NewReader(kubeProxyIPTablesState(fam.ep, fam.vip))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", tl.restore, err, out)
			}
			if serves, err := l.KubeProxyServes(fam.family); err != nil || !serves {
				t.Errorf("%s: kube-proxy's state: KubeProxyServes %v, %v; want true", fam.family, serves, err)
			}
			if err := l.Ensure(fam.family, kubevsRuleset()); err != nil {
				t.Fatal(err)
			}
			if serves, err := l.KubeProxyServes(fam.family); err != nil || serves {
				t.Errorf("%s: after kubevs's rules: KubeProxyServes %v, %v; want false", fam.family, serves, err)
			}
			before := map[string]layout{}
			for _, name := range KubeProxyTables {
				before[name] = readLayout(t, l, fam.family, name)
			}

			removed, err := l.RemoveKubeProxyChains(fam.family)
			if err != nil {
				t.Fatal(err)
			}
			wantRemoved := []string{
				"filter/KUBE-EXTERNAL-SERVICES", "filter/KUBE-NODEPORTS", "filter/KUBE-PROXY-CANARY",
				"mangle/KUBE-PROXY-CANARY",
				"nat/KUBE-EXT-NPX46M4PTMTKRN6Y", "nat/KUBE-FW-GNZBNJ2PO5MGZ6GT", "nat/KUBE-NODEPORTS",
				"nat/KUBE-PROXY-CANARY", "nat/KUBE-SEP-IT2ZTR26TO4XFPTO", "nat/KUBE-SEP-ZXMNUKOKXUTL2MK2",
				"nat/KUBE-SVC-NPX46M4PTMTKRN6Y", "nat/KUBE-SVC-TCOU7JCQXEZGVUNU", "nat/KUBE-SVL-GNZBNJ2PO5MGZ6GT",
			}
			if diff := cmp.Diff(wantRemoved, removed); diff != "" {
				t.Errorf("%s: removed (-want +got):\n%s", fam.family, diff)
			}
			want := map[string]layout{
				"mangle": {Chains: []string{"FORWARD", "INPUT", "KUBE-KUBELET-CANARY", "OUTPUT", "POSTROUTING", "PREROUTING"}},
				"nat": {
					Chains: []string{"FOREIGN-LB", "INPUT", "KUBE-KUBELET-CANARY", "KUBE-MARK-DROP", "KUBE-MARK-MASQ",
						"KUBE-POSTROUTING", "KUBE-SEP-KEPTBYFOREIGNLB2", "KUBE-SEP-TOOSHORT", "KUBE-SERVICES",
						"KUBE-SVC-KEPTBYFOREIGNLB2", "KUBE-SVC-lowercase", "OUTPUT", "POSTROUTING", "PREROUTING"},
					Jumps: before["nat"].Jumps,
				},
				"filter": {
					Chains: []string{"CALI-FORWARD", "FORWARD", "INPUT", "KUBE-FIREWALL", "KUBE-IPVS-FILTER", "KUBE-KUBELET-CANARY", "OUTPUT"},
					Jumps:  []string{"INPUT>KUBE-IPVS-FILTER", "INPUT>KUBE-FIREWALL", "FORWARD>CALI-FORWARD", "OUTPUT>KUBE-FIREWALL"},
				},
			}
			for _, name := range KubeProxyTables {
				got := readLayout(t, l, fam.family, name)
				w := want[name]
				w.Rules = map[string][]string{}
				for _, c := range w.Chains {
					if r, ok := before[name].Rules[c]; ok {
						w.Rules[c] = r // every chain that stays keeps its rules
					}
				}
				if diff := cmp.Diff(w, got); diff != "" {
					t.Errorf("%s table %s after the removal (-want +got):\n%s", fam.family, name, diff)
				}
			}
			if diff := cmp.Diff([]string{"PREROUTING>KUBE-SERVICES", "PREROUTING>FOREIGN-LB", "OUTPUT>KUBE-SERVICES", "POSTROUTING>KUBE-POSTROUTING"},
				before["nat"].Jumps); diff != "" {
				t.Errorf("%s nat jumps after kubevs's Ensure (-want +got):\n%s", fam.family, diff)
			}

			// Nothing left: no write.
			restores := l.restores
			if removed, err := l.RemoveKubeProxyChains(fam.family); err != nil || len(removed) != 0 {
				t.Errorf("%s: second removal: %v, %v; want nothing, nil", fam.family, removed, err)
			}
			if l.restores != restores {
				t.Errorf("%s: second removal ran iptables-restore %d times, want 0", fam.family, l.restores-restores)
			}
		}
	})
}
