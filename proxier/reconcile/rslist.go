package reconcile

import (
	"cmp"
	"iter"
	"net/netip"
	"slices"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// rsList is the model's picture of one virtual server's real servers and their weights,
// sorted by address and port. A virtual server has a few real servers as a rule: a sorted
// list holds them in 32 bytes each, where a map took about 75 (at 10,000 virtual servers
// of 10, the model held 12 MB of maps; BenchmarkProxierHeap in proxier/daemon).
type rsList []rsEntry

type rsEntry struct {
	addr   netip.Addr
	port   uint16
	weight int32
}

func (e rsEntry) addrPort() netip.AddrPort { return netip.AddrPortFrom(e.addr, e.port) }

func compareEntry(e rsEntry, ap netip.AddrPort) int {
	if c := e.addr.Compare(ap.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(e.port, ap.Port())
}

// rsListOf is the list of rss (the last of two with one address and port wins).
func rsListOf(rss []ipvs.RealServer) rsList {
	l := make(rsList, 0, len(rss))
	for _, rs := range rss {
		l = append(l, rsEntry{addr: rs.Address, port: rs.Port, weight: rs.Weight})
	}
	slices.SortStableFunc(l, func(a, b rsEntry) int { return compareEntry(a, b.addrPort()) })
	// Of equal ones keep the last: compact keeps the first of a run, so reverse runs first.
	out := l[:0]
	for i := 0; i < len(l); i++ {
		if i+1 < len(l) && compareEntry(l[i], l[i+1].addrPort()) == 0 {
			continue
		}
		out = append(out, l[i])
	}
	return slices.Clip(out)
}

// get returns the weight of ap, and whether it is there.
func (l rsList) get(ap netip.AddrPort) (int32, bool) {
	i, ok := slices.BinarySearchFunc(l, ap, compareEntry)
	if !ok {
		return 0, false
	}
	return l[i].weight, true
}

// set adds ap with weight w, or sets its weight.
func (l *rsList) set(ap netip.AddrPort, w int32) {
	i, ok := slices.BinarySearchFunc(*l, ap, compareEntry)
	if ok {
		(*l)[i].weight = w
		return
	}
	*l = slices.Insert(*l, i, rsEntry{addr: ap.Addr(), port: ap.Port(), weight: w})
}

// del removes ap.
func (l *rsList) del(ap netip.AddrPort) {
	if i, ok := slices.BinarySearchFunc(*l, ap, compareEntry); ok {
		*l = slices.Delete(*l, i, i+1)
	}
}

// all yields each real server and its weight, in order. The list must not change meanwhile.
func (l rsList) all() iter.Seq2[netip.AddrPort, int32] {
	return func(yield func(netip.AddrPort, int32) bool) {
		for _, e := range l {
			if !yield(e.addrPort(), e.weight) {
				return
			}
		}
	}
}

// same reports whether l holds exactly the real servers rss, with their weights.
func (l rsList) same(rss []ipvs.RealServer) bool {
	if len(l) != len(rss) {
		return false
	}
	for _, rs := range rss {
		if w, ok := l.get(rs.AddrPort()); !ok || w != rs.Weight {
			return false
		}
	}
	return true
}
