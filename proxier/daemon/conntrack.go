package daemon

// Connection tracking limits and timeouts (config.ConntrackConfiguration), with
// kube-proxy's meaning: nf_conntrack_max is MaxPerCore x CPUs but at least Min, and every
// number is only ever raised, never lowered below what the node already holds. They are
// written once at start through the sysctl adapter and not recorded for --cleanup (as
// kube-proxy, kubevs leaves them raised: lowering nf_conntrack_max under load would drop
// new connections). The conntrack hash table size (a module parameter under /sys, not a
// sysctl) is left to the kernel.

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/sysctl"
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
	for _, t := range []struct {
		name string
		d    time.Duration
	}{
		{"nf_conntrack_tcp_timeout_established", c.TCPEstablishedTimeout.Duration},
		{"nf_conntrack_tcp_timeout_close_wait", c.TCPCloseWaitTimeout.Duration},
		{"nf_conntrack_udp_timeout", c.UDPTimeout.Duration},
		{"nf_conntrack_udp_timeout_stream", c.UDPStreamTimeout.Duration},
	} {
		if s := int64(t.d / time.Second); s > 0 {
			out = append(out, desired.Sysctl{Name: netfilterSysctl + t.name, Value: strconv.FormatInt(s, 10), AtLeast: true})
		}
	}
	if c.TCPBeLiberal {
		out = append(out, desired.Sysctl{Name: netfilterSysctl + "nf_conntrack_tcp_be_liberal", Value: "1", AtLeast: true})
	}
	return out
}

// applyConntrack writes the parameters of c that the kernel holds lower. Errors name the
// parameter; the others are still written.
func applyConntrack(s sysctl.Interface, c config.ConntrackConfiguration, ncpu int) error {
	var errs []error
	for _, p := range conntrackSysctls(c, ncpu) {
		cur, err := s.Get(p.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", p.Name, err))
			continue
		}
		if n, err := strconv.ParseInt(cur, 10, 64); err == nil {
			if want, _ := strconv.ParseInt(p.Value, 10, 64); n >= want {
				continue
			}
		}
		if err := s.Set(p.Name, p.Value); err != nil {
			errs = append(errs, fmt.Errorf("set sysctl %s=%s: %w", p.Name, p.Value, err))
		}
	}
	return errors.Join(errs...)
}
