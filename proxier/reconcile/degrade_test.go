package reconcile

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
	"github.com/kubevs/kubevs/proxier/sysctl/sysctltest"
)

// A dual-stack node whose kernel cannot turn on IPv6 forwarding (the fake does not know the
// parameter: it fails for good) starts with IPv6 disabled and reported, and programs IPv4.
func TestStartWithoutIPv6ForwardingDisablesIPv6(t *testing.T) {
	f := newFakes()
	opts := testOpts
	opts.Families = []ipset.Family{ipset.IPv4, ipset.IPv6}
	r := New(f.kernel(), Options{Desired: opts, Now: func() time.Time { return f.now }})
	c := ctx(t)
	must(t, r.Start(c))
	d := r.Degraded()
	if len(d) != 1 || d[0].Step != "family inet6" || !strings.Contains(d[0].Err.Error(), "net/ipv6/conf/all/forwarding") {
		t.Fatalf("Degraded() = %v, want the IPv6 family", d)
	}
	v4 := svc{name: "default/v4", ip: "10.96.0.10", ports: []string{"TCP:80"}, eps: []string{"10.244.1.5"}, opts: &opts}
	v6 := svc{name: "default/v6", ip: "fd00:96::10", ports: []string{"TCP:80"}, eps: []string{"fd00:244::5@local"}, opts: &opts}
	must(t, r.Resync(c, all(t, v4, v6)))
	dump := f.dump()
	for _, bad := range []string{"fd00", "inet6"} {
		if strings.Contains(dump, bad) {
			t.Errorf("IPv6 state (%q) programmed with IPv6 disabled:\n%s", bad, dump)
		}
	}
	if !strings.Contains(dump, "TCP:10.96.0.10:80 rr\n  -> 10.244.1.5:8080 weight 1") {
		t.Errorf("IPv4 Service not programmed:\n%s", dump)
	}
	must(t, r.Apply(c, changes(t, v6)))
	if got := f.ipvs.Dump(); strings.Contains(got, "fd00") {
		t.Errorf("Apply programmed an IPv6 virtual server:\n%s", got)
	}
}

// Which Start steps are optional: a failing optional sysctl is reported and Start succeeds;
// a failing required one (or IPv6 forwarding on an IPv6-only node) fails Start.
func TestStartStepsOptionalAndRequired(t *testing.T) {
	for _, tc := range []struct {
		name     string
		families []ipset.Family
		failing  string
		wantErr  bool
		degraded []string
	}{
		{name: "expire_nodest_conn is optional", failing: "net/ipv4/vs/expire_nodest_conn", degraded: []string{"sysctl net/ipv4/vs/expire_nodest_conn"}},
		{name: "strict ARP is optional", failing: "net/ipv4/conf/all/arp_ignore", degraded: []string{"sysctl net/ipv4/conf/all/arp_ignore"}},
		{name: "vs/conntrack is required", failing: "net/ipv4/vs/conntrack", wantErr: true},
		{name: "IPv6 forwarding on an IPv6-only node is required", families: []ipset.Family{ipset.IPv6}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakes()
			opts := testOpts
			opts.Families = tc.families
			if tc.failing != "" {
				f.sysctl.SetHook(func(op, target string) error {
					if op == sysctltest.OpSet && strings.HasPrefix(target, tc.failing+" ") {
						return errors.New("read-only file system")
					}
					return nil
				})
			}
			r := New(f.kernel(), Options{Desired: opts, Now: func() time.Time { return f.now }})
			err := r.Start(ctx(t))
			if (err != nil) != tc.wantErr {
				t.Errorf("Start: %v, want error %v", err, tc.wantErr)
			}
			var got []string
			for _, d := range r.Degraded() {
				got = append(got, d.Step)
			}
			if diff := cmp.Diff(tc.degraded, got); diff != "" {
				t.Errorf("Degraded (-want +got):\n%s", diff)
			}
		})
	}
}

// A dual-stack node whose kernel refuses the IPv6 rules for good (no ip6tables support)
// starts with IPv6 disabled and reported, and programs IPv4; an IPv4 failure still fails
// Start.
func TestStartWithoutIP6TablesDisablesIPv6(t *testing.T) {
	for _, failing := range []string{"inet6", "inet"} {
		t.Run(failing, func(t *testing.T) {
			f := newFakes()
			sysctls := fixture.Sysctls()
			sysctls["net/ipv6/conf/all/forwarding"] = "0"
			f.sysctl = sysctltest.NewFake(sysctls)
			f.nf.SetHook(func(op, target string) error {
				if op == netfiltertest.OpEnsure && target == failing {
					return errors.New("ip6tables-restore: Table does not exist (do you need to insmod?)")
				}
				return nil
			})
			opts := testOpts
			opts.Families = []ipset.Family{ipset.IPv4, ipset.IPv6}
			r := New(f.kernel(), Options{Desired: opts, Now: func() time.Time { return f.now }})
			err := r.Start(ctx(t))
			if failing == "inet" {
				if err == nil {
					t.Fatalf("Start succeeded without the IPv4 rules")
				}
				return
			}
			must(t, err)
			if d := r.Degraded(); len(d) != 1 || d[0].Step != "family inet6" {
				t.Fatalf("Degraded() = %v, want the IPv6 family", d)
			}
			v6 := svc{name: "default/v6", ip: "fd00:96::10", ports: []string{"TCP:80"}, eps: []string{"fd00:244::5"}, opts: &opts}
			must(t, r.Resync(ctx(t), all(t, web, v6)))
			if got := f.ipvs.Dump(); strings.Contains(got, "fd00") || !strings.Contains(got, "10.96.0.10") {
				t.Errorf("IPVS with IPv6 disabled:\n%s", got)
			}
			if strings.Contains(f.nf.Save(), "inet6") {
				t.Errorf("IPv6 rules written:\n%s", f.nf.Save())
			}
		})
	}
}
