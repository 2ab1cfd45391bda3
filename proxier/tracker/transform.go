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
// is dropped too. Services become desired.APIService and EndpointSlices desired.Slice, the
// compact forms Compute reads (about a quarter of the bytes of the stripped API objects: see
// BenchmarkInformerCacheBytes). The Node keeps its type, without managedFields and its
// status images, conditions and system info. A new read of a Service field must be added to
// desired.APIService, of a Node field here; TestTransformKeepsWhatComputeReads fails when a
// field Compute reads is dropped.

// Transform is the informers' cache.TransformFunc: it returns Services and EndpointSlices
// as the tracker's compact forms, Nodes with only the fields the proxier reads, and any
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

// cachedService is a Service as the informer cache holds it: desired.APIService, a
// runtime.Object with object metadata (namespace, name, UID and resource version) for the
// informer, as cachedSlice is.
type cachedService struct {
	desired.APIService
}

var _ runtime.Object = (*cachedService)(nil)

func stripService(s *v1.Service) *cachedService {
	return &cachedService{APIService: *desired.APIServiceOf(s)}
}

// GetObjectKind has no kind to tell: the object never goes back to the API.
func (s *cachedService) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies s; its slices and map are never modified, so they are shared.
func (s *cachedService) DeepCopyObject() runtime.Object {
	c := *s
	return &c
}

// GetObjectMeta is the metadata the informer reads (meta.Accessor).
func (s *cachedService) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, UID: s.UID, ResourceVersion: s.ResourceVersion}
}

// GetNamespace and GetName name s in logs (klog.KObj).
func (s *cachedService) GetNamespace() string { return s.Namespace }
func (s *cachedService) GetName() string      { return s.Name }

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
	return &v1.Node{
		TypeMeta: n.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name, Namespace: n.Namespace, UID: n.UID, ResourceVersion: n.ResourceVersion,
			DeletionTimestamp: n.DeletionTimestamp,
			Labels:            n.Labels, // derive.Node hands every label to Compute
		},
		Spec:   v1.NodeSpec{PodCIDR: n.Spec.PodCIDR, PodCIDRs: n.Spec.PodCIDRs, Taints: n.Spec.Taints, Unschedulable: n.Spec.Unschedulable},
		Status: v1.NodeStatus{Addresses: n.Status.Addresses},
	}
}
