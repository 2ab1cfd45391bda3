package reconcile

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

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
