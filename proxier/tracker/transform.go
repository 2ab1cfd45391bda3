package tracker

import (
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubevs/kubevs/proxier/desired"
)

// The informers keep, of each object, only what the proxier reads (desired.ComputeService,
// derive.Node, the change tracker, the daemon): an allow list, so a field the API adds later
// is dropped too. Services and the Node keep their types, without managedFields, the
// kubectl last-applied annotation, Service selectors and conditions, and the Node's status
// images, conditions and system info. EndpointSlices, most of the bytes at scale, become
// desired.Slice: about a quarter of the bytes of the stripped API object (see
// BenchmarkInformerCacheBytes). A new read of a Service or Node field must be added here,
// and TestTransformKeepsWhatComputeReads fails when a field Compute reads is stripped.

// serviceLabels and serviceAnnotations are the Service labels and annotations read.
var (
	serviceLabels      = []string{desired.ServiceProxyNameLabel}
	serviceAnnotations = []string{desired.SchedulerAnnotation, desired.SourceRangesAnnotation}
)

// Transform is the informers' cache.TransformFunc: it returns Services and Nodes with only
// the fields the proxier reads, EndpointSlices as the tracker's compact slice, and any
// other object unchanged. It is idempotent and does not modify its argument.
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

// cachedSlice is an EndpointSlice as the informer cache holds it: what Compute reads, in the
// compact form of desired.Slice, the trigger time of its last update (zero: none) and its
// resource version. It is a runtime.Object with object metadata (namespace, name and
// resource version) for the informer: its keys, and its telling of an update from a resync
// (the same resource version), which it hands only to handlers that asked for resyncs.
type cachedSlice struct {
	desired.Slice
	trigger         time.Time
	resourceVersion string
}

var _ runtime.Object = (*cachedSlice)(nil)

func stripSlice(s *discoveryv1.EndpointSlice) *cachedSlice {
	out := &cachedSlice{Slice: *desired.SliceOf(s), resourceVersion: s.ResourceVersion}
	if v, ok := s.Annotations[TriggerTimeAnnotation]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			out.trigger = t
		}
	}
	return out
}

// GetObjectKind has no kind to tell: the object never goes back to the API.
func (s *cachedSlice) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies s.
func (s *cachedSlice) DeepCopyObject() runtime.Object {
	c := *s
	c.Ports = slices.Clone(s.Ports)
	c.Endpoints = slices.Clone(s.Endpoints)
	c.Invalid = slices.Clone(s.Invalid)
	c.Others = slices.Clone(s.Others)
	return &c
}

// GetObjectMeta is the metadata the informer reads (meta.Accessor).
func (s *cachedSlice) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, ResourceVersion: s.resourceVersion}
}

// GetNamespace and GetName name s in logs (klog.KObj).
func (s *cachedSlice) GetNamespace() string { return s.Namespace }
func (s *cachedSlice) GetName() string      { return s.Name }

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
