//go:build linux

package netfiltertest

import (
	"errors"
	"fmt"
	"os/exec"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// TestFakeMatchesKernel runs one script on the fake and on iptables (nf_tables backend, fresh
// netns) and compares the Dumps and the outcome of each call. The rules are written the way
// iptables-save prints them, since the fake does not canonicalize.
func TestFakeMatchesKernel(t *testing.T) {
	n := testenv.NewNetns(t)
	var kernel []string
	err := n.Do(func(ns.NetNS) error {
		if out, err := exec.Command("ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port").CombinedOutput(); err != nil {
			return fmt.Errorf("ipset create: %v: %s", err, out)
		}
		l, err := netfilter.NewBackend(netfilter.BackendNFT)
		if err != nil {
			return err
		}
		kernel = script(l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(kernel, script(NewFake())); diff != "" {
		t.Errorf("fake differs from the kernel (-kernel +fake):\n%s", diff)
	}
}

func script(nf netfilter.Interface) []string {
	var out []string
	res := func(err error) {
		if err != nil {
			out = append(out, "error")
			return
		}
		out = append(out, "ok")
	}
	dump := func() {
		rs, err := nf.Dump(v4)
		res(err)
		out = append(out, fmt.Sprintf("%+v", rs))
	}
	res(nf.Ensure(v4, rules("0x4000")))
	dump()
	res(nf.Ensure(v4, rules("0x4000")))
	r := rules("0x8000")
	r.Jumps = r.Jumps[1:]
	r.Jumps = append(r.Jumps, netfilter.Jump{Table: "nat", From: "POSTROUTING", Match: "-m comment --comment kubevs", To: "KUBE-MARK-MASQ"})
	res(nf.Ensure(v4, r))
	dump()
	r.Chains = r.Chains[:2]
	r.Jumps = r.Jumps[:1]
	res(nf.Ensure(v4, r))
	dump()
	res(nf.Ensure(v4, netfilter.Ruleset{Chains: []netfilter.Chain{{Table: "nat", Name: "KUBE-NOT-OURS"}}}))
	res(nf.Cleanup(v4))
	dump()
	res(nf.Cleanup(v4))
	if err := nf.Ensure("ipx", r); errors.Is(err, nil) {
		out = append(out, "unknown family accepted")
	}
	return out
}
