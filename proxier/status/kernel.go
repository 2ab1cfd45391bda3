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
	keys := make([]ipvs.Key, len(vss))
	for i, v := range vss {
		keys[i] = v.Key
	}
	all, err := realServers(iv, keys)
	if err != nil {
		return Snapshot{}, err
	}
	for i, v := range vss {
		rss := all[i]
		if rss == nil { // deleted since the listing
			continue
		}
		slices.SortFunc(rss, func(a, b ipvs.RealServer) int { return a.AddrPort().Compare(b.AddrPort()) })
		snap.VirtualServers = append(snap.VirtualServers, KernelVS{VirtualServer: v, RealServers: rss})
	}
	return snap, nil
}

// batchIPVS lists the real servers of many virtual servers at once (guardedIPVS: in one job
// of the reader), with listRealServers's results in the order of keys.
type batchIPVS interface {
	realServersOf(keys []ipvs.Key) ([][]ipvs.RealServer, error)
}

// realServers lists the real servers of each key, in order: through iv's batch when it has
// one, else one RealServers call after the other.
func realServers(iv ipvs.Interface, keys []ipvs.Key) ([][]ipvs.RealServer, error) {
	if b, ok := iv.(batchIPVS); ok {
		return b.realServersOf(keys)
	}
	out := make([][]ipvs.RealServer, len(keys))
	for i, k := range keys {
		var err error
		if out[i], err = listRealServers(iv, k); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// listRealServers lists k's real servers: a non-nil slice, or nil and no error when k has
// gone since the listing of the virtual servers.
func listRealServers(iv ipvs.Interface, k ipvs.Key) ([]ipvs.RealServer, error) {
	rss, err := iv.RealServers(k)
	if errors.Is(err, ipvs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list real servers of %s: %w", k, err)
	}
	if rss == nil {
		rss = []ipvs.RealServer{}
	}
	return rss, nil
}
