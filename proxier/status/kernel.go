package status

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
)

// ReadKernel reads the IPVS table and the addresses of the dummy link through read-only
// calls only (VirtualServers, RealServers, Addresses): it never changes the kernel. A
// virtual server deleted between the two listings is left out; an absent dummy link is
// reported through DummyPresent, not as an error.
func ReadKernel(iv ipvs.Interface, lk link.Interface, dummy string) (Snapshot, error) {
	snap := Snapshot{Dummy: dummy, DummyPresent: true}
	addrs, err := lk.Addresses(dummy)
	switch {
	case errors.Is(err, link.ErrNotFound):
		snap.DummyPresent = false
	case err != nil:
		return Snapshot{}, fmt.Errorf("list addresses of %s: %w", dummy, err)
	}
	for _, a := range addrs {
		snap.Addresses = append(snap.Addresses, a.Unmap())
	}
	slices.SortFunc(snap.Addresses, netip.Addr.Compare)
	vss, err := iv.VirtualServers()
	if err != nil {
		return Snapshot{}, fmt.Errorf("list virtual servers: %w", err)
	}
	slices.SortFunc(vss, func(a, b ipvs.VirtualServer) int { return desired.CompareKeys(a.Key, b.Key) })
	for _, v := range vss {
		rss, err := iv.RealServers(v.Key)
		if errors.Is(err, ipvs.ErrNotFound) {
			continue
		}
		if err != nil {
			return Snapshot{}, fmt.Errorf("list real servers of %s: %w", v.Key, err)
		}
		slices.SortFunc(rss, func(a, b ipvs.RealServer) int { return a.AddrPort().Compare(b.AddrPort()) })
		snap.VirtualServers = append(snap.VirtualServers, KernelVS{VirtualServer: v, RealServers: rss})
	}
	return snap, nil
}
