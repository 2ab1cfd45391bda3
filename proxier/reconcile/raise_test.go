package reconcile

import (
	"testing"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
)

// TestStartRaisesSysctls: Start, the only kernel writer, raises the conntrack parameters it
// is given and never lowers one the node already holds higher.
func TestStartRaisesSysctls(t *testing.T) {
	sysctls := fixture.Sysctls()
	sysctls["net/netfilter/nf_conntrack_max"] = "65536"
	sysctls["net/netfilter/nf_conntrack_udp_timeout"] = "120"
	fk := fixture.NewKernel(sysctls)
	f := &fakes{ipvs: fk.IPVS, link: fk.Link, ipset: fk.IPSet, nf: fk.Netfilter, ct: fk.Conntrack, sysctl: fk.Sysctl}
	r := New(f.kernel(), Options{Desired: testOpts, RaisedSysctls: []desired.Sysctl{
		{Name: "net/netfilter/nf_conntrack_max", Value: "131072", AtLeast: true},
		{Name: "net/netfilter/nf_conntrack_udp_timeout", Value: "60", AtLeast: true},
	}})
	must(t, r.Start(ctx(t)))
	for name, want := range map[string]string{"net/netfilter/nf_conntrack_max": "131072", "net/netfilter/nf_conntrack_udp_timeout": "120"} {
		if got, _ := f.sysctl.Get(name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	for _, c := range r.SysctlChanges() {
		if c.Name == "net/netfilter/nf_conntrack_max" {
			t.Errorf("raised conntrack limit recorded for --cleanup: %+v", c)
		}
	}
}
