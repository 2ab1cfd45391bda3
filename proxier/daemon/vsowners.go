package daemon

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/metrics"
	"github.com/kubevs/kubevs/proxier/tracker"
)

// vsOwners maps every virtual server of the last desired state to its Service, for the
// per-Service IPVS counters read at scrape time. It is updated per changed Service, full
// syncs included (fullsync.go), so a virtual server two Services want (a stale duplicate
// ClusterIP, one externalIP claimed twice) keeps every holder: when one lets it go the
// other still owns it, and the owner shown is the first holder by name whatever the order
// of the updates. Safe for concurrent use.
//
// It holds one entry per Service and one per virtual server, and allocates nothing more
// for a virtual server one Service holds (nearly all of them): at 10,000 Services a slice
// of keys per Service and of holders per key cost 0.6 MB of the proxier's heap.
type vsOwners struct {
	mu sync.Mutex
	// vss holds each Service's virtual servers as its last update gave them, to let them go
	// at its next: the caller's slice, which the computed cache and the reconciler hold
	// too and nobody writes to, not a copy.
	vss map[types.NamespacedName][]desired.VirtualServer
	// first holds the first holder of every virtual server by tracker.CompareNames, its
	// owner; rest the others, sorted, for the virtual servers that have others.
	first map[ipvs.Key]types.NamespacedName
	rest  map[ipvs.Key][]types.NamespacedName
}

func newVSOwners() *vsOwners {
	return &vsOwners{
		vss:   map[types.NamespacedName][]desired.VirtualServer{},
		first: map[ipvs.Key]types.NamespacedName{},
		rest:  map[ipvs.Key][]types.NamespacedName{},
	}
}

// update records the virtual servers of services; full replaces everything recorded. A
// nil o (the per-Service traffic metrics are off, the default) records nothing: the owners
// of 50,000 Services took 9 MB of the proxier's heap for no reader.
func (o *vsOwners) update(services map[types.NamespacedName]desired.Service, full bool) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if full {
		clear(o.vss)
		clear(o.first)
		clear(o.rest)
	}
	for name, s := range services {
		for i := range o.vss[name] {
			o.remove(o.vss[name][i].Key, name)
		}
		for i := range s.VirtualServers {
			o.add(s.VirtualServers[i].Key, name)
		}
		if len(s.VirtualServers) > 0 {
			o.vss[name] = s.VirtualServers
		} else {
			delete(o.vss, name)
		}
	}
}

// add makes name a holder of k (again: no change).
func (o *vsOwners) add(k ipvs.Key, name types.NamespacedName) {
	f, ok := o.first[k]
	if !ok {
		o.first[k] = name
		return
	}
	switch c := tracker.CompareNames(name, f); {
	case c == 0:
	case c < 0: // name comes first: the owner so far moves to the head of the others
		o.first[k] = name
		o.rest[k] = slices.Insert(o.rest[k], 0, f)
	default:
		r := o.rest[k]
		if i, found := slices.BinarySearchFunc(r, name, tracker.CompareNames); !found {
			o.rest[k] = slices.Insert(r, i, name)
		}
	}
}

// remove makes name no holder of k (already none: no change); the next holder, if any,
// owns k.
func (o *vsOwners) remove(k ipvs.Key, name types.NamespacedName) {
	f, ok := o.first[k]
	if !ok {
		return
	}
	r := o.rest[k]
	if f == name {
		if len(r) == 0 {
			delete(o.first, k)
			return
		}
		o.first[k] = r[0]
		r = slices.Delete(r, 0, 1)
	} else if i, found := slices.BinarySearchFunc(r, name, tracker.CompareNames); found {
		r = slices.Delete(r, i, i+1)
	}
	if len(r) == 0 {
		delete(o.rest, k)
	} else {
		o.rest[k] = r
	}
}

// snapshot returns the owner of every virtual server.
func (o *vsOwners) snapshot() map[ipvs.Key]metrics.ServiceRef {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[ipvs.Key]metrics.ServiceRef, len(o.first))
	for k, n := range o.first {
		out[k] = metrics.ServiceRef{Namespace: n.Namespace, Name: n.Name}
	}
	return out
}
