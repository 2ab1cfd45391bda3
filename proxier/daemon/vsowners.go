package daemon

import (
	"maps"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/metrics"
)

// vsOwners maps every virtual server of the last desired state to its Service, for the
// per-Service IPVS counters read at scrape time. Safe for concurrent use.
type vsOwners struct {
	mu     sync.Mutex
	byName map[types.NamespacedName][]ipvs.Key
	owners map[ipvs.Key]metrics.ServiceRef
}

func newVSOwners() *vsOwners {
	return &vsOwners{byName: map[types.NamespacedName][]ipvs.Key{}, owners: map[ipvs.Key]metrics.ServiceRef{}}
}

// update records the virtual servers of services; full replaces everything recorded.
func (o *vsOwners) update(services map[types.NamespacedName]desired.Service, full bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if full {
		clear(o.byName)
		clear(o.owners)
	}
	for name, s := range services {
		for _, k := range o.byName[name] {
			delete(o.owners, k)
		}
		delete(o.byName, name)
		ref := metrics.ServiceRef{Namespace: name.Namespace, Name: name.Name}
		for _, vs := range s.VirtualServers {
			o.owners[vs.Key] = ref
			o.byName[name] = append(o.byName[name], vs.Key)
		}
	}
}

// snapshot returns a copy of the map.
func (o *vsOwners) snapshot() map[ipvs.Key]metrics.ServiceRef {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.owners)
}
