package daemon

import (
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/desired"
)

// computedCache holds the desired state of every Service as the last syncs computed it,
// with the options and Node they were computed for. ComputeService is pure, and a change
// of a Service's objects or of its local endpoints marks it changed in the tracker, so a
// full resync with the same options and Node recomputes only the changed Services: at
// 10,000 Services that is most of a periodic resync's CPU (ComputeService costs ~66 us a
// Service, BenchmarkComputeService; the reconciler's Resync over fakes ~25 us).
type computedCache struct {
	opts desired.Options
	node desired.Node
	// svcs holds the states worth keeping (keepComputed) by Service; nil: invalid.
	svcs map[types.NamespacedName]desired.Service
	// ipGen is the ClusterIP index's generation when svcs was last filled by a full sync.
	ipGen uint64
}

// valid reports whether the cached states were computed for opts and node.
func (c *computedCache) valid(opts desired.Options, node desired.Node) bool {
	return c.svcs != nil && derive.Equal(c.opts, opts) && nodesEqual(c.node, node)
}

// reset empties the cache and makes it hold states computed for opts and node.
func (c *computedCache) reset(opts desired.Options, node desired.Node) {
	c.opts, c.node = opts, node
	c.svcs = map[types.NamespacedName]desired.Service{}
}

func nodesEqual(a, b desired.Node) bool {
	return a.Name == b.Name && a.Zone == b.Zone && maps.Equal(a.Labels, b.Labels) && slices.Equal(a.Addresses, b.Addresses)
}
