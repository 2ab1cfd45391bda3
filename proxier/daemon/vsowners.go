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
type vsOwners struct {
	mu      sync.Mutex
	byName  map[types.NamespacedName][]ipvs.Key
	holders map[ipvs.Key][]types.NamespacedName // sorted by tracker.CompareNames
}

func newVSOwners() *vsOwners {
	return &vsOwners{byName: map[types.NamespacedName][]ipvs.Key{}, holders: map[ipvs.Key][]types.NamespacedName{}}
}

// update records the virtual servers of services; full replaces everything recorded.
func (o *vsOwners) update(services map[types.NamespacedName]desired.Service, full bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if full {
		clear(o.byName)
		clear(o.holders)
	}
	for name, s := range services {
		for _, k := range o.byName[name] {
			h := o.holders[k]
			if i, ok := slices.BinarySearchFunc(h, name, tracker.CompareNames); ok {
				h = slices.Delete(h, i, i+1)
			}
			if len(h) == 0 {
				delete(o.holders, k)
			} else {
				o.holders[k] = h
			}
		}
		delete(o.byName, name)
		for _, vs := range s.VirtualServers {
			h := o.holders[vs.Key]
			if i, ok := slices.BinarySearchFunc(h, name, tracker.CompareNames); !ok {
				o.holders[vs.Key] = slices.Insert(h, i, name)
			}
			o.byName[name] = append(o.byName[name], vs.Key)
		}
	}
}

// snapshot returns the owner of every virtual server.
func (o *vsOwners) snapshot() map[ipvs.Key]metrics.ServiceRef {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[ipvs.Key]metrics.ServiceRef, len(o.holders))
	for k, h := range o.holders {
		out[k] = metrics.ServiceRef{Namespace: h[0].Namespace, Name: h[0].Name}
	}
	return out
}
