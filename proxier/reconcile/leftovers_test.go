package reconcile

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubevs/kubevs/proxier/conntrack/conntracktest"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
)

// kube-proxy's nftables-mode tables DNAT every Service before IPVS sees it: they go with the
// first Resync that wrote kubevs's rules (not at Start: until the virtual servers exist they
// are what answers), and only they.
func TestFirstResyncRemovesKubeProxyNFTables(t *testing.T) {
	f := newFakes()
	nft := netfiltertest.NewNFTables("ip kube-proxy", "ip6 kube-proxy", "ip someone-else", "inet kube-proxy")
	k := f.kernel()
	k.NFTables = nft
	r := New(k, Options{Desired: testOpts})
	c := ctx(t)
	if err := r.Start(c); err != nil {
		t.Fatalf("start: %v", err)
	}
	before := []string{"inet kube-proxy", "ip kube-proxy", "ip someone-else", "ip6 kube-proxy"}
	if diff := cmp.Diff(before, nft.Tables()); diff != "" {
		t.Errorf("after Start (-want +got):\n%s", diff)
	}

	// A Resync whose rules could not be written leaves them: they still answer.
	f.nf.FailNext(netfiltertest.OpEnsure, errors.New("injected: xtables lock"))
	if err := r.Resync(c, all(t, web)); err == nil {
		t.Fatal("resync with a failed rules write: want an error")
	}
	if diff := cmp.Diff(before, nft.Tables()); diff != "" {
		t.Errorf("after a Resync without rules (-want +got):\n%s", diff)
	}

	// A removal that fails is retried at the next Resync.
	nft.Err = errors.New("injected: EBUSY")
	if err := r.Resync(c, all(t, web)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	nft.Err = nil
	if err := r.Resync(c, all(t, web)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	if diff := cmp.Diff([]string{"inet kube-proxy", "ip someone-else"}, nft.Tables()); diff != "" {
		t.Errorf("after the first complete Resync (-want +got):\n%s", diff)
	}
}

// kube-proxy's iptables-mode chains that kubevs does not use go with the first Resync that
// wrote kubevs's rules, with the jumps to them; the kubelet's chains stay, and so do the
// families kubevs does not program.
func TestFirstResyncRemovesKubeProxyIPTablesChains(t *testing.T) {
	f := newFakes()
	for _, fam := range []netfilter.Family{"inet", "inet6"} {
		for _, r := range []struct{ table, chain, rule string }{
			{"nat", "PREROUTING", `-m comment --comment "kubernetes service portals" -j KUBE-SERVICES`},
			{"nat", "KUBE-SERVICES", "-d 10.96.0.10/32 -p udp -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU"},
			{"nat", "KUBE-SERVICES", "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"},
			{"nat", "KUBE-NODEPORTS", ""},
			{"nat", "KUBE-SVC-TCOU7JCQXEZGVUNU", "-j KUBE-SEP-IT2ZTR26TO4XFPTO"},
			{"nat", "KUBE-SEP-IT2ZTR26TO4XFPTO", "-p udp -m udp -j DNAT --to-destination 10.244.1.5:53"},
			{"filter", "INPUT", `-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES`},
			{"filter", "INPUT", "-j KUBE-FIREWALL"},
			{"filter", "KUBE-EXTERNAL-SERVICES", "-p tcp -m tcp --dport 31000 -j REJECT"},
			{"filter", "KUBE-FIREWALL", "-j DROP"},
			{"filter", "KUBE-KUBELET-CANARY", ""},
			{"mangle", "KUBE-PROXY-CANARY", ""},
		} {
			if err := f.nf.Append(fam, r.table, r.chain, r.rule); err != nil {
				t.Fatal(err)
			}
		}
	}
	k := f.kernel()
	k.KubeProxyChains = f.nf
	r := New(k, Options{Desired: testOpts})
	c := ctx(t)
	if err := r.Start(c); err != nil {
		t.Fatalf("start: %v", err)
	}
	leftovers := []string{"filter/KUBE-EXTERNAL-SERVICES", "mangle/KUBE-PROXY-CANARY", "nat/KUBE-NODEPORTS",
		"nat/KUBE-SEP-IT2ZTR26TO4XFPTO", "nat/KUBE-SVC-TCOU7JCQXEZGVUNU"}
	if diff := cmp.Diff(leftovers, kubeProxyChainsIn(f.nf.Save(), "inet")); diff != "" {
		t.Errorf("after Start (-want +got):\n%s", diff)
	}

	// A Resync whose rules could not be written leaves them.
	f.nf.FailNext(netfiltertest.OpEnsure, errors.New("injected: xtables lock"))
	if err := r.Resync(c, all(t, web)); err == nil {
		t.Fatal("resync with a failed rules write: want an error")
	}
	if diff := cmp.Diff(leftovers, kubeProxyChainsIn(f.nf.Save(), "inet")); diff != "" {
		t.Errorf("after a Resync without rules (-want +got):\n%s", diff)
	}

	// A removal that fails is retried at the next Resync.
	f.nf.FailNext(netfiltertest.OpRemoveKubeProxy, errors.New("injected: xtables lock"))
	if err := r.Resync(c, all(t, web)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	if diff := cmp.Diff(leftovers, kubeProxyChainsIn(f.nf.Save(), "inet")); diff != "" {
		t.Errorf("after a failed removal (-want +got):\n%s", diff)
	}
	if err := r.Resync(c, all(t, web)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	if got := kubeProxyChainsIn(f.nf.Save(), "inet"); len(got) != 0 {
		t.Errorf("after the first complete Resync: %v left", got)
	}
	save := f.nf.Save()
	for _, want := range []string{"-A INPUT -j KUBE-FIREWALL\n", "-A KUBE-FIREWALL -j DROP\n", ":KUBE-KUBELET-CANARY\n"} {
		if n := strings.Count(save, want); n != 2 {
			t.Errorf("%q: %d times, want 2 (the kubelet's, in both families)\n%s", want, n, save)
		}
	}
	if inet, _, _ := strings.Cut(save, "# inet6"); strings.Contains(inet, "KUBE-EXTERNAL-SERVICES") {
		t.Errorf("a jump to a removed chain is left:\n%s", save)
	}
	// IPv6 is not programmed by this configuration: its chains are not kubevs's to remove.
	if diff := cmp.Diff(leftovers, kubeProxyChainsIn(save, "inet6")); diff != "" {
		t.Errorf("inet6 (-want +got):\n%s", diff)
	}
	// Once done, no more removals.
	f.nf.ResetOps()
	if err := r.Resync(c, all(t, web)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	if n := f.nf.Calls(netfiltertest.OpRemoveKubeProxy); n != 0 {
		t.Errorf("removals after the one that succeeded: %d, want 0", n)
	}
}

// kubeProxyChainsIn lists the netfilter.KubeProxyChain chains a fake's Save holds in family,
// as "TABLE/CHAIN", sorted.
func kubeProxyChainsIn(save, family string) []string {
	var out []string
	fam, table := "", ""
	for _, line := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(line, "# "):
			fam = line[2:]
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":") && fam == family && netfilter.KubeProxyChain(table, line[1:]):
			out = append(out, table+"/"+line[1:])
		}
	}
	slices.Sort(out)
	return out
}

// The first Resync deletes the flows it queued only once kube-proxy's nftables tables are
// gone: before, the next packet of a deleted flow would be DNATed by them again, to the
// endpoint kube-proxy last saw.
func TestKubeProxyTablesGoBeforeTheFlows(t *testing.T) {
	f := newFakes()
	nft := netfiltertest.NewNFTables("ip kube-proxy")
	k := f.kernel()
	k.NFTables = nft
	r := New(k, Options{Desired: testOpts})
	c := ctx(t)
	if err := r.Start(c); err != nil {
		t.Fatalf("start: %v", err)
	}
	var seen [][]string
	f.ct.SetHook(func(op, _ string) error {
		seen = append(seen, nft.Tables())
		return nil
	})
	// A Service gone while nobody ran: its flows (kube-proxy's DNAT to a dead pod) go.
	vip := mustAP("10.96.0.53:53")
	f.ct.Add(conntracktest.NATFlow(ipvs.UDP, mustAP("10.244.7.7:40000"), vip, mustAP("10.244.9.9:8053")))
	if err := r.Resync(c, all(t, dns)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	if diff := cmp.Diff([][]string{{}}, seen, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("nftables tables when the flows were deleted (-want +got):\n%s", diff)
	}
}

// kubeProxyIPTables puts what kube-proxy's iptables mode leaves for web (10.96.0.10:80) in
// the fake's inet nat table: its Service DNAT, still live.
func kubeProxyIPTables(t *testing.T, nf *netfiltertest.Fake) {
	t.Helper()
	for _, r := range []struct{ chain, rule string }{
		{"PREROUTING", `-m comment --comment "kubernetes service portals" -j KUBE-SERVICES`},
		{"OUTPUT", `-m comment --comment "kubernetes service portals" -j KUBE-SERVICES`},
		{"KUBE-SERVICES", "-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-NPX46M4PTMTKRN6Y"},
		{"KUBE-SVC-NPX46M4PTMTKRN6Y", "-j KUBE-SEP-ZXMNUKOKXUTL2MK2"},
		{"KUBE-SEP-ZXMNUKOKXUTL2MK2", "-p tcp -m tcp -j DNAT --to-destination 10.244.1.5:8080"},
	} {
		if err := nf.Append("inet", "nat", r.chain, r.rule); err != nil {
			t.Fatal(err)
		}
	}
}

// When kube-proxy's iptables mode still translates Services at Start (it stopped without
// --cleanup), kubevs's rules, which replace its KUBE-SERVICES, are written only once the
// first Resync has put the virtual servers and their addresses in place: until then
// kube-proxy's DNAT answers, from then IPVS does, with no moment where neither does.
func TestRulesWaitForTheVirtualServersWhileKubeProxyIPTablesServes(t *testing.T) {
	f := newFakes()
	kubeProxyIPTables(t, f.nf)
	k := f.kernel()
	k.KubeProxyChains = f.nf
	r := New(k, Options{Desired: testOpts})
	c := ctx(t)
	if err := r.Start(c); err != nil {
		t.Fatalf("start: %v", err)
	}
	if serves, err := f.nf.KubeProxyServes("inet"); err != nil || !serves {
		t.Errorf("after Start kube-proxy's DNAT no longer serves (%v, %v):\n%s", serves, err, f.nf.Save())
	}
	var atRules []string // the virtual servers each rules write found
	f.nf.SetHook(func(op, _ string) error {
		if op == netfiltertest.OpEnsure {
			atRules = append(atRules, f.ipvs.Dump()+f.link.Dump())
		}
		return nil
	})
	if err := r.Resync(c, all(t, web)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	if len(atRules) == 0 {
		t.Fatal("the first Resync wrote no rules")
	}
	for _, want := range []string{"TCP:10.96.0.10:80", "10.96.0.10"} {
		if !strings.Contains(atRules[0], want) {
			t.Errorf("when the rules were written, %s was not in place:\n%s", want, atRules[0])
		}
	}
	if serves, err := f.nf.KubeProxyServes("inet"); err != nil || serves {
		t.Errorf("after the first Resync kube-proxy's DNAT still serves (%v, %v):\n%s", serves, err, f.nf.Save())
	}
	if got := kubeProxyChainsIn(f.nf.Save(), "inet"); len(got) != 0 {
		t.Errorf("kube-proxy's chains left after the first Resync: %v", got)
	}
	// From then on the rules are written first again, as without kube-proxy.
	atRules = nil
	if err := f.nf.Flush("inet", "nat", "KUBE-SERVICES"); err != nil {
		t.Fatal(err)
	}
	if err := r.Resync(c, all(t, web)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	if len(atRules) != 1 {
		t.Errorf("the second Resync wrote the rules %d times, want 1", len(atRules))
	}
}

// Without kube-proxy's iptables DNAT, Start writes the rules itself, as it always did.
func TestStartWritesTheRulesWithoutKubeProxyIPTables(t *testing.T) {
	f := newFakes()
	k := f.kernel()
	k.KubeProxyChains = f.nf
	r := New(k, Options{Desired: testOpts})
	if err := r.Start(ctx(t)); err != nil {
		t.Fatalf("start: %v", err)
	}
	if !strings.Contains(f.nf.Save(), ":KUBE-SERVICES\n") {
		t.Errorf("Start wrote no rules:\n%s", f.nf.Save())
	}
}
