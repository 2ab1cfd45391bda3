// Package tracker owns the proxier's view of the API: client-go informers on Services,
// EndpointSlices and the proxier's own Node, and a change tracker that tells which Services
// changed since the last sync (dropping changes that cancel out) and when the changes were
// triggered, for the network programming latency metric. The informers cache only the
// fields the proxier reads (Transform): a fifth of the bytes of the objects as decoded.
//
// Services labelled service.kubernetes.io/service-proxy-name belong to another proxy and
// headless Services need no proxying: both are filtered out by the informers' label
// selectors and, in case an object slips through, treated as absent by the tracker.
package tracker

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
)

// Label selectors of the informers: the same objects kube-proxy skips.
const (
	serviceSelector = "!" + desired.ServiceProxyNameLabel
	sliceSelector   = discoveryv1.LabelServiceName + ",!" + desired.ServiceProxyNameLabel + ",!" + v1.IsHeadlessService
)

// Changes is what changed since the last Take.
type Changes struct {
	// Services are the Services whose state changed (including deleted ones).
	Services map[types.NamespacedName]struct{}
	// Node is true when the own Node's labels, addresses or pod CIDRs changed: every
	// Service must be recomputed.
	Node bool
	// Triggers are the trigger times of the EndpointSlice updates the changes include.
	Triggers []time.Time
}

// Tracker watches the API and records changes. Its methods are safe for concurrent use.
type Tracker struct {
	client   kubernetes.Interface
	nodeName string
	onChange func()

	mu          sync.Mutex
	c           *changes
	node        *v1.Node
	nodeChanged bool
	synced      []cache.InformerSynced
}

// New returns a Tracker for the Node nodeName. onChange (may be nil) is called, outside any
// lock, after every event that changed something; it must not block.
func New(client kubernetes.Interface, nodeName string, onChange func()) *Tracker {
	if onChange == nil {
		onChange = func() {}
	}
	return &Tracker{client: client, nodeName: nodeName, onChange: onChange, c: newChanges(time.Now())}
}

// Start starts the informers; they stop when ctx is done. Call it once.
func (t *Tracker) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	// Transform strips what the proxier never reads before the objects enter the caches.
	svcF := informers.NewSharedInformerFactoryWithOptions(t.client, 0, informers.WithTransform(Transform))
	sliceF := informers.NewSharedInformerFactoryWithOptions(t.client, 0, informers.WithTransform(Transform))
	nodeF := informers.NewSharedInformerFactoryWithOptions(t.client, 0, informers.WithTransform(Transform),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", t.nodeName).String()
		}))

	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandlerFuncs
	}{
		{serviceInformer(svcF), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { t.onService(logger, nil, o) },
			UpdateFunc: func(old, o any) { t.onService(logger, old, o) },
			DeleteFunc: func(o any) { t.onService(logger, o, nil) },
		}},
		{sliceInformer(sliceF), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { t.onSlice(logger, nil, o) },
			UpdateFunc: func(old, o any) { t.onSlice(logger, old, o) },
			DeleteFunc: func(o any) { t.onSlice(logger, o, nil) },
		}},
		{nodeF.Core().V1().Nodes().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { t.onNode(o, false) },
			UpdateFunc: func(_, o any) { t.onNode(o, false) },
			DeleteFunc: func(o any) { t.onNode(o, true) },
		}},
	}
	var synced []cache.InformerSynced
	for _, h := range handlers {
		reg, err := h.inf.AddEventHandler(h.h)
		if err != nil {
			return fmt.Errorf("add event handler: %w", err)
		}
		synced = append(synced, reg.HasSynced)
	}
	t.mu.Lock()
	t.synced = synced
	t.mu.Unlock()
	for _, f := range []informers.SharedInformerFactory{svcF, sliceF, nodeF} {
		f.Start(ctx.Done())
	}
	logger.Info("Watching Services, EndpointSlices and the Node", "node", t.nodeName)
	return nil
}

// serviceInformer and sliceInformer return the informers of f on Services and EndpointSlices
// with the label selectors and without the namespace index the factory's own informers
// keep: the tracker reads its own state (changes.go), never an informer's store, and the
// index held an entry for every object (0.8 MB of the proxier's heap at 10,000 Services of
// one slice each). f applies its transform to them.
func serviceInformer(f informers.SharedInformerFactory) cache.SharedIndexInformer {
	return f.InformerFor(&v1.Service{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewFilteredServiceInformer(c, metav1.NamespaceAll, resync, cache.Indexers{},
			func(o *metav1.ListOptions) { o.LabelSelector = serviceSelector })
	})
}

func sliceInformer(f informers.SharedInformerFactory) cache.SharedIndexInformer {
	return f.InformerFor(&discoveryv1.EndpointSlice{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return discoveryinformers.NewFilteredEndpointSliceInformer(c, metav1.NamespaceAll, resync, cache.Indexers{},
			func(o *metav1.ListOptions) { o.LabelSelector = sliceSelector })
	})
}

// HasSynced reports whether every informer delivered its initial list. No kernel change
// should be made before.
func (t *Tracker) HasSynced() bool {
	t.mu.Lock()
	synced := t.synced
	t.mu.Unlock()
	if synced == nil {
		return false
	}
	for _, s := range synced {
		if !s() {
			return false
		}
	}
	return true
}

func objectMeta(o any) (any, bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj, true
	}
	return o, false
}

func (t *Tracker) onService(logger klog.Logger, old, cur any) {
	var name types.NamespacedName
	var svc *desired.APIService
	if cur != nil {
		svc = asService(cur)
		if svc == nil {
			return
		}
		name = svc.NamespacedName()
	} else {
		o, _ := objectMeta(old)
		s := asService(o)
		if s == nil {
			return
		}
		name = s.NamespacedName()
	}
	logger.V(4).Info("Service event", "service", name, "deleted", svc == nil)
	t.mu.Lock()
	t.c.setService(name, svc)
	t.mu.Unlock()
	t.onChange()
}

// asService takes the cached Services (Transform made them); a Service as served, as a
// test's informer without the transform hands it, is converted here.
func asService(o any) *desired.APIService {
	switch s := o.(type) {
	case *cachedService:
		return &s.APIService
	case *v1.Service:
		return desired.APIServiceOf(s)
	}
	return nil
}

func sliceService(s *cachedSlice) (types.NamespacedName, bool) {
	return types.NamespacedName{Namespace: s.Namespace, Name: s.Service}, s.Service != ""
}

// onSlice takes the cached slices (Transform made them); an EndpointSlice as served, as a
// test's informer without the transform hands it, is converted here.
func (t *Tracker) onSlice(logger klog.Logger, old, cur any) {
	oldObj, _ := objectMeta(old)
	o, c := asSlice(oldObj), asSlice(cur)
	t.mu.Lock()
	if o != nil {
		if name, ok := sliceService(o); ok {
			// Removed, or moved to another Service (the label changed).
			if n2, ok2 := sliceOwner(c); !ok2 || n2 != name {
				t.c.setSlice(name, o.Name, nil)
			}
		}
	}
	if c != nil {
		if name, ok := sliceService(c); ok {
			t.c.setSlice(name, c.Name, c)
		}
	}
	t.mu.Unlock()
	if c != nil {
		logger.V(4).Info("EndpointSlice event", "endpointSlice", klog.KObj(c))
	} else if o != nil {
		logger.V(4).Info("EndpointSlice deleted", "endpointSlice", klog.KObj(o))
	}
	t.onChange()
}

func asSlice(o any) *cachedSlice {
	switch s := o.(type) {
	case *cachedSlice:
		return s
	case *discoveryv1.EndpointSlice:
		return stripSlice(s)
	}
	return nil
}

func sliceOwner(s *cachedSlice) (types.NamespacedName, bool) {
	if s == nil {
		return types.NamespacedName{}, false
	}
	return sliceService(s)
}

// onNode records the own Node. The field selector already filters by name; the check here
// keeps a client that ignores field selectors (the fake clientset) correct too.
func (t *Tracker) onNode(o any, deleted bool) {
	obj, _ := objectMeta(o)
	n, _ := obj.(*v1.Node)
	if n == nil || n.Name != t.nodeName {
		return
	}
	if deleted {
		n = nil
	}
	t.mu.Lock()
	changed := !nodeEqual(t.node, n)
	t.node = n
	if changed {
		t.nodeChanged = true
	}
	t.mu.Unlock()
	if changed {
		t.onChange()
	}
}

// nodeEqual compares what the proxier uses of a Node.
func nodeEqual(a, b *v1.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	return maps.Equal(a.Labels, b.Labels) &&
		equality.Semantic.DeepEqual(a.Status.Addresses, b.Status.Addresses) &&
		slices.Equal(a.Spec.PodCIDRs, b.Spec.PodCIDRs)
}

// PendingChanges returns the Services that changed since the last Take (changes that
// cancel out are left out). It does not consume them.
func (t *Tracker) PendingChanges() map[types.NamespacedName]struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.c.names()
}

// Take returns what changed since the last Take and starts a new round.
func (t *Tracker) Take() Changes {
	t.mu.Lock()
	defer t.mu.Unlock()
	names, triggers := t.c.take()
	ch := Changes{Services: names, Node: t.nodeChanged, Triggers: triggers}
	t.nodeChanged = false
	return ch
}

// Touch marks Services as changed although their objects did not change (their local
// endpoints did), and calls onChange.
func (t *Tracker) Touch(names ...types.NamespacedName) {
	if len(names) == 0 {
		return
	}
	t.mu.Lock()
	for _, n := range names {
		t.c.touch(n)
	}
	t.mu.Unlock()
	t.onChange()
}

// Service returns the current Service called name (nil if absent) and its EndpointSlices
// sorted by name. The objects are shared and must not be modified.
func (t *Tracker) Service(name types.NamespacedName) (*desired.APIService, []*desired.Slice) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.c.current[name]
	var out []*desired.Slice
	if len(s.slices) > 0 {
		out = make([]*desired.Slice, len(s.slices))
		for i, sl := range s.slices {
			out[i] = &sl.Slice
		}
	}
	return s.svc, out
}

// Services returns the names of every Service known (with a Service object or slices).
func (t *Tracker) Services() []types.NamespacedName {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Collect(maps.Keys(t.c.current))
	slices.SortFunc(out, CompareNames)
	return out
}

// ServicesWithEndpoints returns the Services with an endpoint whose (first) address match
// is true for, sorted.
func (t *Tracker) ServicesWithEndpoints(match func(netip.Addr) bool) []types.NamespacedName {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []types.NamespacedName
	for name, s := range t.c.current {
		if hasEndpoint(s, match) {
			out = append(out, name)
		}
	}
	slices.SortFunc(out, CompareNames)
	return out
}

func hasEndpoint(s state, match func(netip.Addr) bool) bool {
	for _, sl := range s.slices {
		for _, e := range sl.Endpoints {
			if match(e.Addr()) {
				return true
			}
		}
	}
	return false
}

// Node returns the own Node, nil until it is seen. It is shared and must not be modified.
func (t *Tracker) Node() *v1.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.node
}

// CompareNames orders Service names as their String() ("namespace/name") does, without
// building the strings: a full sync sorts every name, and the two allocations per compare
// were most of its cost at 10,000 Services. A namespace holds no '/'.
func CompareNames(a, b types.NamespacedName) int {
	if a.Namespace == b.Namespace {
		return strings.Compare(a.Name, b.Name)
	}
	n := min(len(a.Namespace), len(b.Namespace))
	if c := strings.Compare(a.Namespace[:n], b.Namespace[:n]); c != 0 {
		return c
	}
	// One namespace is a prefix of the other: '/' meets the longer one's next byte.
	if len(a.Namespace) < len(b.Namespace) {
		return cmp.Compare('/', b.Namespace[n])
	}
	return cmp.Compare(a.Namespace[n], '/')
}
