package tracker

import (
	"slices"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/desired"
)

// The informers keep, of each object, only what the proxier reads (desired.ComputeService,
// derive.Node, the change tracker, the daemon): an allow list, so a field the API adds later
// is dropped too. What goes is mostly managedFields, the kubectl last-applied annotation,
// Service selectors and conditions, endpoints' targetRef, zone and hostname, and the Node's
// status images, conditions and system info: about half the bytes held (see
// BenchmarkInformerCacheBytes). A new read of an object field must be added here, and
// TestTransformKeepsWhatComputeReads fails when a field Compute reads is stripped.

// serviceLabels and serviceAnnotations are the Service labels and annotations read.
var (
	serviceLabels      = []string{desired.ServiceProxyNameLabel}
	serviceAnnotations = []string{desired.SchedulerAnnotation, desired.SourceRangesAnnotation}
	sliceLabels        = []string{discoveryv1.LabelServiceName, desired.ServiceProxyNameLabel, v1.IsHeadlessService}
	sliceAnnotations   = []string{TriggerTimeAnnotation}
)

// Transform is the informers' cache.TransformFunc: it returns Services, EndpointSlices and
// Nodes with only the fields the proxier reads, and any other object unchanged. It is
// idempotent and does not modify its argument.
func Transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1.Service:
		return stripService(o), nil
	case *discoveryv1.EndpointSlice:
		return stripSlice(o), nil
	case *v1.Node:
		return stripNode(o), nil
	}
	return obj, nil
}

// meta keeps the identity of an object and the listed labels and annotations.
func meta(m *metav1.ObjectMeta, labels, annotations []string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		DeletionTimestamp: m.DeletionTimestamp,
		Labels:            only(m.Labels, labels),
		Annotations:       only(m.Annotations, annotations),
	}
}

// only returns the entries of m whose keys are listed, nil when there is none.
func only(m map[string]string, keys []string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = make(map[string]string, len(keys))
			}
			out[k] = v
		}
	}
	return out
}

func stripService(s *v1.Service) *v1.Service {
	return &v1.Service{
		TypeMeta:   s.TypeMeta,
		ObjectMeta: meta(&s.ObjectMeta, serviceLabels, serviceAnnotations),
		Spec: v1.ServiceSpec{
			Type:                     s.Spec.Type,
			ClusterIP:                s.Spec.ClusterIP,
			ClusterIPs:               s.Spec.ClusterIPs,
			Ports:                    s.Spec.Ports,
			ExternalIPs:              s.Spec.ExternalIPs,
			SessionAffinity:          s.Spec.SessionAffinity,
			SessionAffinityConfig:    s.Spec.SessionAffinityConfig,
			LoadBalancerSourceRanges: s.Spec.LoadBalancerSourceRanges,
			ExternalTrafficPolicy:    s.Spec.ExternalTrafficPolicy,
			InternalTrafficPolicy:    s.Spec.InternalTrafficPolicy,
			HealthCheckNodePort:      s.Spec.HealthCheckNodePort,
		},
		Status: v1.ServiceStatus{LoadBalancer: v1.LoadBalancerStatus{Ingress: s.Status.LoadBalancer.Ingress}},
	}
}

func stripSlice(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	out := &discoveryv1.EndpointSlice{
		TypeMeta:    s.TypeMeta,
		ObjectMeta:  meta(&s.ObjectMeta, sliceLabels, sliceAnnotations),
		AddressType: s.AddressType,
		Ports:       s.Ports,
	}
	if s.Endpoints != nil {
		out.Endpoints = make([]discoveryv1.Endpoint, len(s.Endpoints))
		for i, e := range s.Endpoints {
			out.Endpoints[i] = discoveryv1.Endpoint{
				Addresses: e.Addresses,
				Conditions: discoveryv1.EndpointConditions{
					Ready: internBool(e.Conditions.Ready), Serving: internBool(e.Conditions.Serving), Terminating: internBool(e.Conditions.Terminating),
				},
				NodeName: shared.nodeName(e.NodeName),
				Hints:    shared.hints(e.Hints),
			}
		}
	}
	return out
}

// The fields of an endpoint that repeat across a cluster's endpoints (its node's name, its
// conditions, its zone hints) point to one shared value each in the cache, where the decoder
// gave every endpoint its own: at 10,000 Services x 10 endpoints that is 100,000 copies of a
// few dozen values (BenchmarkInformerCacheBytes). Cached objects are never written to, so
// sharing is safe; the tables grow with the cluster's nodes and zone sets, never with its
// endpoints.
var (
	boolTrue, boolFalse = true, false
	shared              = &interner{names: map[string]*string{}, hintSets: map[string]*discoveryv1.EndpointHints{}}
)

// internBool returns the shared pointer to *b (nil for nil).
func internBool(b *bool) *bool {
	switch {
	case b == nil:
		return nil
	case *b:
		return &boolTrue
	default:
		return &boolFalse
	}
}

// interner hands out one pointer per distinct node name and per distinct set of hints. It
// is safe for concurrent use (the informers transform in their own goroutines).
type interner struct {
	mu       sync.Mutex
	names    map[string]*string
	hintSets map[string]*discoveryv1.EndpointHints
}

// nodeName returns the shared pointer to *n (nil for nil).
func (in *interner) nodeName(n *string) *string {
	if n == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	p, ok := in.names[*n]
	if !ok {
		v := *n
		p = &v
		in.names[v] = p
	}
	return p
}

// hints returns the shared copy of h (nil for nil).
func (in *interner) hints(h *discoveryv1.EndpointHints) *discoveryv1.EndpointHints {
	if h == nil {
		return nil
	}
	var b strings.Builder
	for _, z := range h.ForZones {
		b.WriteByte('z')
		b.WriteString(z.Name)
		b.WriteByte(0)
	}
	for _, n := range h.ForNodes {
		b.WriteByte('n')
		b.WriteString(n.Name)
		b.WriteByte(0)
	}
	key := b.String()
	in.mu.Lock()
	defer in.mu.Unlock()
	p, ok := in.hintSets[key]
	if !ok {
		p = &discoveryv1.EndpointHints{
			ForZones: slices.Clone(h.ForZones),
			ForNodes: slices.Clone(h.ForNodes),
		}
		in.hintSets[key] = p
	}
	return p
}

func stripNode(n *v1.Node) *v1.Node {
	m := meta(&n.ObjectMeta, nil, nil)
	m.Labels = n.Labels // derive.Node hands every label to Compute
	return &v1.Node{
		TypeMeta:   n.TypeMeta,
		ObjectMeta: m,
		Spec:       v1.NodeSpec{PodCIDR: n.Spec.PodCIDR, PodCIDRs: n.Spec.PodCIDRs, Taints: n.Spec.Taints, Unschedulable: n.Spec.Unschedulable},
		Status:     v1.NodeStatus{Addresses: n.Status.Addresses},
	}
}
