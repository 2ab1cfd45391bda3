//go:build linux

package netfilter

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/testenv"
)

// kube-proxy's nftables mode (the shape that matters: a nat chain hooked at dstnat in each
// family's kube-proxy table, with a map and a rule) is deleted whole; a table of someone
// else's with a chain at the same hook, and iptables-nft's own nat table, stay.
func TestRemoveKubeProxyTablesDeletesOnlyKubeProxys(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		testenv.Skip(t, "needs nft (Debian's nftables; test/scripts/deps.sh installs it)")
	}
	testenv.EnterNetns(t)
	for _, fam := range []string{"ip", "ip6"} {
		addr, typ := "10.96.0.10", "ipv4_addr"
		if fam == "ip6" {
			addr, typ = "fd00:96::10", "ipv6_addr"
		}
		script := strings.Join([]string{
			"add table " + fam + " kube-proxy",
			"add chain " + fam + " kube-proxy nat-prerouting { type nat hook prerouting priority dstnat ; }",
			"add map " + fam + " kube-proxy service-ips { type " + typ + " : verdict ; }",
			"add chain " + fam + " kube-proxy services",
			"add rule " + fam + " kube-proxy nat-prerouting jump services",
			"add rule " + fam + " kube-proxy services " + fam + " daddr vmap @service-ips",
			"add chain " + fam + " kube-proxy svc-x",
			"add element " + fam + " kube-proxy service-ips { " + addr + " : goto svc-x }",
			"add table " + fam + " someone-else",
			"add chain " + fam + " someone-else pre { type nat hook prerouting priority dstnat ; }",
		}, "\n")
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft -f: %v\n%s", err, out)
		}
	}
	run(t, "iptables", "-t", "nat", "-N", "KUBE-SERVICES")

	removed, err := NewNFTables().RemoveKubeProxyTables()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ip kube-proxy", "ip6 kube-proxy"}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if got, want := tables(t), []string{"ip nat", "ip someone-else", "ip6 someone-else"}; !cmp.Equal(got, want) {
		t.Errorf("tables left: %v, want %v", got, want)
	}
	// Again: nothing to remove, no error.
	removed, err = NewNFTables().RemoveKubeProxyTables()
	if err != nil || len(removed) != 0 {
		t.Errorf("second removal: %v, %v; want nothing, nil", removed, err)
	}
}

// tables lists `nft list tables` as "FAMILY NAME", sorted.
func tables(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(run(t, "nft", "list", "tables"), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" {
			out = append(out, f[1]+" "+f[2])
		}
	}
	slices.Sort(out)
	return out
}
