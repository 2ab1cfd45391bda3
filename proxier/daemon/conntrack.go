package daemon

// Connection tracking limits and timeouts (config.ConntrackConfiguration), with
// kube-proxy's meaning: nf_conntrack_max is MaxPerCore x CPUs but at least Min, and every
// number is only ever raised, never lowered below what the node already holds. They are
// computed here and written once by the reconciler's Start (reconcile.Options.RaisedSysctls),
// not recorded for --cleanup (as kube-proxy, kubevs leaves them raised: lowering
// nf_conntrack_max under load would drop new connections). The conntrack hash table size (a module parameter under /sys, not a
// sysctl) is left to the kernel.

import (
	"strconv"
	"time"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/desired"
)

const netfilterSysctl = "net/netfilter/"

// conntrackSysctls returns the parameters c asks for on a node with ncpu CPUs.
func conntrackSysctls(c config.ConntrackConfiguration, ncpu int) []desired.Sysctl {
	var out []desired.Sysctl
	if c.MaxPerCore != nil && *c.MaxPerCore > 0 {
		max := int64(*c.MaxPerCore) * int64(ncpu)
		if c.Min != nil && int64(*c.Min) > max {
			max = int64(*c.Min)
		}
		out = append(out, desired.Sysctl{Name: netfilterSysctl + "nf_conntrack_max", Value: strconv.FormatInt(max, 10), AtLeast: true})
	}
	for _, t := range c.Timeouts() {
		if s := int64(t.Value / time.Second); s > 0 {
			out = append(out, desired.Sysctl{Name: netfilterSysctl + t.Sysctl, Value: strconv.FormatInt(s, 10), AtLeast: true})
		}
	}
	if c.TCPBeLiberal {
		out = append(out, desired.Sysctl{Name: netfilterSysctl + "nf_conntrack_tcp_be_liberal", Value: "1", AtLeast: true})
	}
	return out
}
