package reconcile

import (
	"errors"
	"net/netip"
	"strings"
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
// not when writing them failed, and then by the Resync that writes them.
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
	must(t, r.Resync(c, all(t)))
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

// TestRouteLocalnetNeverLeftWithoutItsGuard: options without loopback NodePort addresses
// drop the localnet guard from the rules, so a route_localnet=1 that kubevs set (in an
// earlier run, by its record, or in this process) is turned back, before the rules change;
// one kubevs did not set is left alone, and one still wanted stays.
func TestRouteLocalnetNeverLeftWithoutItsGuard(t *testing.T) {
	loopback := testOpts
	loopback.NodePortAddresses = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	setBefore := []SysctlChange{{Name: desired.RouteLocalnetSysctl, Old: "0", New: "1"}}
	tests := []struct {
		name     string
		recorded []SysctlChange
		opts     desired.Options
		want     string
	}{
		{"set by an earlier run, not wanted now", setBefore, testOpts, "0"},
		{"set by someone else", nil, testOpts, "1"},
		{"set by an earlier run, still wanted", setBefore, loopback, "1"},
		{"recorded, then set by someone else to another value", []SysctlChange{{Name: desired.RouteLocalnetSysctl, Old: "0", New: "2"}}, testOpts, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sysctls := fixture.Sysctls()
			sysctls[desired.RouteLocalnetSysctl] = "1"
			fk := fixture.NewKernel(sysctls)
			f := &fakes{ipvs: fk.IPVS, link: fk.Link, ipset: fk.IPSet, nf: fk.Netfilter, ct: fk.Conntrack, sysctl: fk.Sysctl}
			// The rules cannot be written: the sysctl is turned back all the same, before them.
			rules := &failingRules{Interface: f.nf, err: errors.New("iptables-restore: injected")}
			k := f.kernel()
			k.Netfilter = rules
			r := New(k, Options{Desired: tt.opts, Recorded: tt.recorded})
			_ = r.Start(ctx(t)) // fails on the rules
			if got, _ := f.sysctl.Get(desired.RouteLocalnetSysctl); got != tt.want {
				t.Errorf("route_localnet = %s after Start, want %s", got, tt.want)
			}
		})
	}

	t.Run("set in this process, then options without loopback", func(t *testing.T) {
		sysctls := fixture.Sysctls()
		sysctls[desired.RouteLocalnetSysctl] = "0"
		fk := fixture.NewKernel(sysctls)
		f := &fakes{ipvs: fk.IPVS, link: fk.Link, ipset: fk.IPSet, nf: fk.Netfilter, ct: fk.Conntrack, sysctl: fk.Sysctl}
		r := New(f.kernel(), Options{Desired: loopback})
		c := ctx(t)
		must(t, r.Start(c))
		if got, _ := f.sysctl.Get(desired.RouteLocalnetSysctl); got != "1" {
			t.Fatalf("route_localnet = %s with a loopback NodePort address, want 1", got)
		}
		if !strings.Contains(f.nf.Save(), desired.LocalnetGuardRule) {
			t.Fatalf("no localnet guard with a loopback NodePort address:\n%s", f.nf.Save())
		}
		must(t, r.SetOptions(c, testOpts))
		if got, _ := f.sysctl.Get(desired.RouteLocalnetSysctl); got != "0" {
			t.Errorf("route_localnet = %s after the loopback NodePort address went, want 0", got)
		}
		if strings.Contains(f.nf.Save(), desired.LocalnetGuardRule) {
			t.Errorf("the localnet guard is still in the rules:\n%s", f.nf.Save())
		}
	})
}

// TestRouteLocalnetThatCannotBeSetIsOneDegradation: every Resync tries route_localnet again
// once its guard is in; one the kernel refuses stays a single degradation, not one more per
// Resync.
func TestRouteLocalnetThatCannotBeSetIsOneDegradation(t *testing.T) {
	sysctls := fixture.Sysctls()
	delete(sysctls, desired.RouteLocalnetSysctl) // the fake refuses to set an unknown sysctl
	fk := fixture.NewKernel(sysctls)
	f := &fakes{ipvs: fk.IPVS, link: fk.Link, ipset: fk.IPSet, nf: fk.Netfilter, ct: fk.Conntrack, sysctl: fk.Sysctl}
	o := testOpts
	o.NodePortAddresses = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	r := New(f.kernel(), Options{Desired: o})
	c := ctx(t)
	must(t, r.Start(c))
	for range 3 {
		must(t, r.Resync(c, all(t)))
	}
	d := r.Degraded()
	if len(d) != 1 || d[0].Step != "sysctl "+desired.RouteLocalnetSysctl {
		t.Errorf("Degraded() = %v, want route_localnet once", d)
	}
}
