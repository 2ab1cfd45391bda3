package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
)

// Cleanup removes exactly what kubevs owns, in both families: the owned virtual servers
// (address bound to the dummy link, or marked by a member of kubevs's sets, see marks; and
// not in excludeCIDRs), the KUBE-* chains and their jumps, the owned sets, then the dummy link.
// Sysctls are left as they are here: RestoreSysctls sets back what Start changed
// (Reconciler.SysctlChanges, if the daemon persisted it), forwarding excepted. Absent
// objects are not an error, so Cleanup may run any number of times.
func Cleanup(ctx context.Context, k Kernel, excludeCIDRs []netip.Prefix) error {
	logger := klog.FromContext(ctx)
	var errs []error
	bound := newRefs[netip.Addr]()
	addrs, err := k.Link.Addresses(link.DefaultDummy)
	if err != nil && !errors.Is(err, link.ErrNotFound) {
		errs = append(errs, fmt.Errorf("list addresses of %s: %w", link.DefaultDummy, err))
	}
	for _, a := range addrs {
		bound.hold(a.Unmap(), true)
	}
	sets, err := k.IPSet.Sets()
	if err != nil {
		errs = append(errs, fmt.Errorf("list sets: %w", err))
	}
	mk := newMarks()
	for _, name := range desired.OwnedSets() {
		if !slices.Contains(sets, name) || !marksVS(name) {
			continue
		}
		es, err := k.IPSet.Entries(name)
		if err != nil && !errors.Is(err, ipset.ErrNotFound) {
			errs = append(errs, fmt.Errorf("list members of set %s: %w", name, err))
		}
		for _, e := range es {
			mk.add(name, e)
		}
	}
	vss, err := k.IPVS.VirtualServers()
	if err != nil {
		errs = append(errs, fmt.Errorf("list virtual servers: %w", err))
	}
	n := 0
	for _, v := range vss {
		if !owned(v.Key, bound, mk, nil, excludeCIDRs) {
			continue
		}
		if err := k.IPVS.DeleteVirtualServer(v.Key); err != nil && !errors.Is(err, ipvs.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete virtual server %s: %w", v.Key, err))
			continue
		}
		n++
	}
	for _, f := range []ipset.Family{ipset.IPv4, ipset.IPv6} {
		if err := k.Netfilter.Cleanup(f); err != nil {
			errs = append(errs, fmt.Errorf("remove %s rules: %w", f, err))
		}
	}
	for _, name := range desired.OwnedSets() {
		if !slices.Contains(sets, name) {
			continue
		}
		if err := k.IPSet.DestroySet(name); err != nil && !errors.Is(err, ipset.ErrNotFound) {
			errs = append(errs, fmt.Errorf("destroy set %s: %w", name, err))
		}
	}
	if err := k.Link.DeleteDummy(link.DefaultDummy); err != nil && !errors.Is(err, link.ErrNotFound) {
		errs = append(errs, fmt.Errorf("delete dummy link %s: %w", link.DefaultDummy, err))
	}
	logger.V(0).Info("Cleaned up", "virtualServers", n)
	return errors.Join(errs...)
}
