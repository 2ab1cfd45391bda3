package netfiltertest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The fake removes what the kernel test (netfilter's TestRemoveKubeProxyChainsOnRealIPTables)
// shows the real one removes: kube-proxy's chains and the jumps to them, not a chain another
// one still uses, nothing else.
func TestFakeRemoveKubeProxyChains(t *testing.T) {
	f := NewFake()
	for _, r := range []struct{ table, chain, rule string }{
		{"nat", "PREROUTING", "-j KUBE-SERVICES"},
		{"nat", "PREROUTING", "-j FOREIGN"},
		{"nat", "KUBE-SERVICES", "-j RETURN"},
		{"nat", "KUBE-NODEPORTS", "-j KUBE-EXT-NPX46M4PTMTKRN6Y"},
		{"nat", "KUBE-EXT-NPX46M4PTMTKRN6Y", "-j KUBE-SVC-NPX46M4PTMTKRN6Y"},
		{"nat", "KUBE-SVC-NPX46M4PTMTKRN6Y", "-j KUBE-SEP-ZXMNUKOKXUTL2MK2"},
		{"nat", "KUBE-SEP-ZXMNUKOKXUTL2MK2", "-j RETURN"},
		{"nat", "FOREIGN", "-j KUBE-SVC-KEPTBYFOREIGNLB2"},
		{"nat", "KUBE-SVC-KEPTBYFOREIGNLB2", "-j RETURN"},
		{"filter", "INPUT", `-m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS`},
		{"filter", "INPUT", "-j KUBE-FIREWALL"},
		{"filter", "KUBE-NODEPORTS", "-j ACCEPT"},
		{"filter", "KUBE-FIREWALL", "-j DROP"},
		{"filter", "KUBE-KUBELET-CANARY", ""},
		{"mangle", "KUBE-PROXY-CANARY", ""},
	} {
		if err := f.Append("inet", r.table, r.chain, r.rule); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := f.RemoveKubeProxyChains("inet")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"filter/KUBE-NODEPORTS", "mangle/KUBE-PROXY-CANARY",
		"nat/KUBE-EXT-NPX46M4PTMTKRN6Y", "nat/KUBE-NODEPORTS", "nat/KUBE-SEP-ZXMNUKOKXUTL2MK2", "nat/KUBE-SVC-NPX46M4PTMTKRN6Y"}
	if diff := cmp.Diff(want, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	wantSave := `# inet
*filter
:KUBE-FIREWALL
:KUBE-KUBELET-CANARY
-A INPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -j DROP
COMMIT
*nat
:FOREIGN
:KUBE-SERVICES
:KUBE-SVC-KEPTBYFOREIGNLB2
-A PREROUTING -j KUBE-SERVICES
-A PREROUTING -j FOREIGN
-A FOREIGN -j KUBE-SVC-KEPTBYFOREIGNLB2
-A KUBE-SERVICES -j RETURN
-A KUBE-SVC-KEPTBYFOREIGNLB2 -j RETURN
COMMIT
`
	if diff := cmp.Diff(wantSave, f.Save()); diff != "" {
		t.Errorf("tables after (-want +got):\n%s", diff)
	}
	wantOps := []string{"remove-kube-proxy inet", "restore inet filter", "restore inet mangle", "restore inet nat"}
	if diff := cmp.Diff(wantOps, f.Ops()); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	f.ResetOps()
	if removed, err := f.RemoveKubeProxyChains("inet"); err != nil || len(removed) != 0 {
		t.Errorf("second removal: %v, %v; want nothing, nil", removed, err)
	}
	if diff := cmp.Diff([]string{"remove-kube-proxy inet"}, f.Ops()); diff != "" {
		t.Errorf("ops of the second removal (-want +got):\n%s", diff)
	}
}
