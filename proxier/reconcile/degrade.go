package reconcile

// Optional Start steps. A Start step the kernel refuses for good must not block all
// programming for ever (seen: dual-stack clusterCIDRs on a node without IPv6 forwarding:
// never ready, nothing programmed). The steps are:
//
//   - required: the dummy link, the sets and rules of the families served, ip_forward and
//     vs/conntrack (IPVS NAT traffic is masqueraded through netfilter only with it): Start
//     fails while one of them fails, and is retried;
//   - optional: the IPv6 family of a dual-stack node (its forwarding sysctl, its sets, its
//     ip6tables rules): when one of them cannot be done, IPv6 is disabled and IPv4
//     programmed; the other
//     sysctls (expire_nodest_conn, expire_quiescent_template, conn_reuse_mode, strict ARP,
//     route_localnet) only make behaviour better: a failure is reported and Start goes on.
//
// Each degradation is logged, and listed by Degraded for the daemon's metric.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
)

// requiredSysctls fail Start when they cannot be set.
var requiredSysctls = []string{"net/ipv4/ip_forward", "net/ipv4/vs/conntrack"}

// ipv6Forwarding is the sysctl without which the IPv6 family is disabled.
const ipv6Forwarding = "net/ipv6/conf/all/forwarding"

// Degradation is an optional Start step that could not be done.
type Degradation struct {
	// Step names it: "sysctl <name>", or "family inet6" when IPv6 was disabled.
	Step string
	Err  error
}

// Degraded lists the optional steps the last Start or SetOptions could not do.
func (r *Reconciler) Degraded() []Degradation { return slices.Clone(r.degraded) }

// prepare computes the global state for o, sets the sysctls and, when an optional step
// fails, degrades instead of failing: it returns the error of the required steps only.
func (r *Reconciler) prepare(ctx context.Context, o desired.Options) error {
	logger := klog.FromContext(ctx)
	kv := r.kernelVersion(ctx)
	r.degraded, r.noIPv6 = nil, false
	g := desired.Global(o, kv)
	// route_localnet waits for the rules that hold its guard (ensureLocalnet).
	fails := r.ensureSysctls(ctx, slices.DeleteFunc(slices.Clone(g.Sysctls), func(s desired.Sysctl) bool { return s.Name == desired.RouteLocalnetSysctl }))
	var required []error
	for _, s := range g.Sysctls {
		err, ok := fails[s.Name]
		switch {
		case !ok:
		case slices.Contains(requiredSysctls, s.Name):
			required = append(required, err)
		case s.Name == ipv6Forwarding && slices.Contains(desired.Families(o), ipset.IPv4):
			r.noIPv6 = true
			r.degraded = append(r.degraded, Degradation{Step: "family inet6", Err: err})
			logger.Error(err, "IPv6 forwarding cannot be turned on: IPv6 Services are not programmed on this node, IPv4 ones are")
		case s.Name == ipv6Forwarding:
			required = append(required, err) // IPv6 is the only family
		default:
			r.degraded = append(r.degraded, Degradation{Step: "sysctl " + s.Name, Err: err})
			logger.Error(err, "An optional sysctl cannot be set; going on without it", "sysctl", s.Name)
		}
	}
	if r.noIPv6 {
		o.Families = []ipset.Family{ipset.IPv4}
		g = desired.Global(o, kv)
	}
	r.global = g
	if len(required) > 0 {
		return fmt.Errorf("required sysctls: %w", errors.Join(required...))
	}
	return nil
}

// usable returns s without the parts of a disabled family.
func (r *Reconciler) usable(s desired.Service) desired.Service {
	if !r.noIPv6 {
		return s
	}
	out := s
	out.VirtualServers = slices.DeleteFunc(slices.Clone(s.VirtualServers), func(v desired.VirtualServer) bool { return v.Key.Address.Unmap().Is6() })
	out.VIPs = slices.DeleteFunc(slices.Clone(s.VIPs), func(a netip.Addr) bool { return a.Unmap().Is6() })
	out.Entries = slices.DeleteFunc(slices.Clone(s.Entries), func(e desired.SetEntry) bool {
		first, _, _ := strings.Cut(string(e.Entry), ",")
		a, err := netip.ParseAddr(first)
		return err == nil && a.Unmap().Is6() // port-only members belong to both families
	})
	return out
}

// familyError is the failure of a set or ruleset of one family ("" for the port bitmaps
// both families share).
type familyError struct {
	family ipset.Family
	err    error
}

func (e *familyError) Error() string { return e.err.Error() }
func (e *familyError) Unwrap() error { return e.err }

// ensureSetsAndRules creates the sets and writes the rules of r.global. On a dual-stack node
// where only IPv6's fail, it disables IPv6 (degraded) and returns the IPv4 outcome.
func (r *Reconciler) ensureSetsAndRules(ctx context.Context) error {
	_, setsErr := r.ensureSets()
	_, rulesErr := r.ensureRules()
	err := errors.Join(setsErr, rulesErr)
	if err == nil || r.noIPv6 || !slices.Contains(desired.Families(r.opts.Desired), ipset.IPv4) || !onlyIPv6(err) {
		return err
	}
	klog.FromContext(ctx).Error(err, "IPv6 sets or rules cannot be written: IPv6 Services are not programmed on this node, IPv4 ones are")
	r.noIPv6 = true
	r.degraded = append(r.degraded, Degradation{Step: "family inet6", Err: err})
	o := r.opts.Desired
	o.Families = []ipset.Family{ipset.IPv4}
	r.global = desired.Global(o, r.kernelVersion(ctx))
	return nil // IPv4's sets and rules were written by the calls above
}

// onlyIPv6 reports whether every error joined in err is a familyError of IPv6.
func onlyIPv6(err error) bool {
	errs := leaves(err)
	for _, e := range errs {
		fe := (*familyError)(nil)
		if !errors.As(e, &fe) || fe.family != ipset.IPv6 {
			return false
		}
	}
	return len(errs) > 0
}

// leaves flattens the errors errors.Join joined.
func leaves(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leaves(e)...)
	}
	return out
}
