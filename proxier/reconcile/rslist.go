package reconcile

import (
	"net/netip"
	"slices"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// rsList is the model's picture of one virtual server's real servers and their weights,
// sorted by address and port (desired.CompareRealServers). A virtual server has a few
// real servers as a rule: a sorted list holds them in 24 bytes each and no pointer, so the
// garbage collector never scans it, where a map took about 75 bytes each (at 10,000
// virtual servers of 10 the model held 12 MB of maps; BenchmarkProxierHeap in
// proxier/daemon). It has the computed state's type, so a virtual server in sync shares
// the wanted list (vsState.shared).
type rsList []desired.RealServer

func (l rsList) find(ap netip.AddrPort) (int, bool) {
	return slices.BinarySearchFunc(l, desired.NewRealServer(ap, 0), desired.CompareRealServers)
}

// rsListOf is the list of rss (the last of two with one address and port wins).
func rsListOf(rss []ipvs.RealServer) rsList {
	return appendSorted(make(rsList, 0, len(rss)), rss)
}

// addAll adds rss, or sets their weights: one sort for all, where set one by one would move
// the list's tail for each (a cold sync adds every real server of a virtual server at once).
func (l *rsList) addAll(rss []ipvs.RealServer) {
	*l = appendSorted(*l, rss)
}

// appendSorted appends rss to l (sorted) and sorts the whole; of two with one address and
// port the later wins.
func appendSorted(l rsList, rss []ipvs.RealServer) rsList {
	for _, rs := range rss {
		l = append(l, desired.RealServerOf(rs))
	}
	slices.SortStableFunc(l, desired.CompareRealServers)
	out := l[:0]
	for i := range l {
		if i+1 < len(l) && desired.CompareRealServers(l[i], l[i+1]) == 0 {
			continue // a later one follows
		}
		out = append(out, l[i])
	}
	return slices.Clip(out)
}

// get returns the weight of ap, and whether it is there.
func (l rsList) get(ap netip.AddrPort) (int32, bool) {
	i, ok := l.find(ap)
	if !ok {
		return 0, false
	}
	return l[i].Weight(), true
}

// set adds ap with weight w, or sets its weight.
func (l *rsList) set(ap netip.AddrPort, w int32) {
	i, ok := l.find(ap)
	if ok {
		(*l)[i] = (*l)[i].WithWeight(w)
		return
	}
	*l = slices.Insert(*l, i, desired.NewRealServer(ap, w))
}

// del removes ap.
func (l *rsList) del(ap netip.AddrPort) {
	if i, ok := l.find(ap); ok {
		*l = slices.Delete(*l, i, i+1)
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

// equal reports whether l is want (a desired list is sorted as l is, so they are equal
// element by element).
func (l rsList) equal(want []desired.RealServer) bool { return slices.Equal(l, want) }
