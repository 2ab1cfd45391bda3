package reconcile

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// failingRules is a netfilter adapter whose Ensure fails while err is set.
type failingRules struct {
	netfilter.Interface
	err error
}

func (f *failingRules) Ensure(family netfilter.Family, rs netfilter.Ruleset) error {
	if f.err != nil {
		return f.err
	}
	return f.Interface.Ensure(family, rs)
}

func (f *failingRules) Repair(family netfilter.Family, rs netfilter.Ruleset) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.Interface.Repair(family, rs)
}

// TestRouteLocalnetOnlyAfterItsGuard: with loopback NodePorts asked for, route_localnet=1 is
// set only once the rules holding the localnet guard (CVE-2020-8558) are in the kernel:
// not when writing them failed, and then by the retry that writes them.
func TestRouteLocalnetOnlyAfterItsGuard(t *testing.T) {
	sysctls := fixture.Sysctls()
	sysctls[desired.RouteLocalnetSysctl] = "0"
	fk := fixture.NewKernel(sysctls)
	f := &fakes{ipvs: fk.IPVS, link: fk.Link, ipset: fk.IPSet, nf: fk.Netfilter, ct: fk.Conntrack, sysctl: fk.Sysctl}
	rules := &failingRules{Interface: f.nf, err: errors.New("iptables-restore: injected")}
	k := f.kernel()
	k.Netfilter = rules
	o := testOpts
	o.NodePortAddresses = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	r := New(k, Options{Desired: o})
	c := ctx(t)
	if err := r.Start(c); err == nil {
		t.Fatal("Start succeeded although the rules could not be written")
	}
	if got, _ := f.sysctl.Get(desired.RouteLocalnetSysctl); got != "0" {
		t.Fatalf("route_localnet = %s without the guard rule in the kernel, want 0", got)
	}
	if got, _ := f.sysctl.Get("net/ipv4/vs/conntrack"); got != "1" {
		t.Errorf("vs/conntrack = %s: the other sysctls must not wait for the rules", got)
	}
	rules.err = nil
	must(t, r.SetOptions(c, o))
	if got, _ := f.sysctl.Get(desired.RouteLocalnetSysctl); got != "1" {
		t.Errorf("route_localnet = %s after the guard rule was written, want 1", got)
	}
	dump, err := f.nf.Dump(netfilter.Family("inet"))
	must(t, err)
	found := false
	for _, ch := range dump.Chains {
		for _, rule := range ch.Rules {
			found = found || (ch.Table == "filter" && ch.Name == desired.ChainProxyFirewall && rule == desired.LocalnetGuardRule)
		}
	}
	if !found {
		t.Errorf("the localnet guard is not in filter %s:\n%s", desired.ChainProxyFirewall, f.nf.Save())
	}
}
