package reconcile

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// rsList is the model's picture of one virtual server's real servers and their weights,
// sorted by address and port. A virtual server has a few real servers as a rule: a sorted
// list holds them in 24 bytes each and no pointer, so the garbage collector never scans
// it, where a map took about 75 bytes each (at 10,000 virtual servers of 10 the model held
// 12 MB of maps; BenchmarkProxierHeap in proxier/daemon).
type rsList []rsEntry

type rsEntry struct {
	addr   [16]byte // IPv4 in its mapped form
	port   uint16
	v4     bool
	weight int32
}

func entryOf(ap netip.AddrPort, weight int32) rsEntry {
	a := ap.Addr()
	return rsEntry{addr: a.As16(), port: ap.Port(), v4: a.Unmap().Is4(), weight: weight}
}

func (e rsEntry) addrPort() netip.AddrPort {
	a := netip.AddrFrom16(e.addr)
	if e.v4 {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, e.port)
}

// compareEntries orders as netip.AddrPort.Compare does: IPv4 first, then by address and
// port.
func compareEntries(a, b rsEntry) int {
	if a.v4 != b.v4 {
		if a.v4 {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(a.addr[:], b.addr[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.port, b.port)
}

func (l rsList) find(ap netip.AddrPort) (int, bool) {
	return slices.BinarySearchFunc(l, entryOf(ap, 0), compareEntries)
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
		l = append(l, entryOf(rs.AddrPort(), rs.Weight))
	}
	slices.SortStableFunc(l, compareEntries)
	out := l[:0]
	for i := range l {
		if i+1 < len(l) && compareEntries(l[i], l[i+1]) == 0 {
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
	return l[i].weight, true
}

// set adds ap with weight w, or sets its weight.
func (l *rsList) set(ap netip.AddrPort, w int32) {
	i, ok := l.find(ap)
	if ok {
		(*l)[i].weight = w
		return
	}
	*l = slices.Insert(*l, i, entryOf(ap, w))
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
