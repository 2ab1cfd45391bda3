package desired

import (
	"maps"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

// APIService is what ComputeService and the proxier read of one Kubernetes Service, in the
// compact form the informer cache holds (APIServiceOf): its identity, the label and
// annotations kubevs honours, the spec fields that shape the kernel state, and the
// LoadBalancer ingress status. Fields keep the API's types and meanings; the names of
// well-known values (types, policies, protocols) point to this package's constants instead
// of the decoder's copies. The informer cache held 1,120 B per Service as a stripped
// v1.Service (640 B for the struct alone), 680 B as this (BenchmarkInformerCacheBytes in
// proxier/tracker). Values are never modified once made.
type APIService struct {
	Namespace, Name string
	// UID and ResourceVersion identify the object for Events and for the informer.
	UID             types.UID
	ResourceVersion string
	// ProxyName is whether the service-proxy-name label is set (ServiceProxyNameLabel).
	ProxyName bool
	// Annotations holds only SchedulerAnnotation and SourceRangesAnnotation, nil when
	// neither is set.
	Annotations map[string]string
	Spec        APIServiceSpec
	// Ingress is status.loadBalancer.ingress.
	Ingress []v1.LoadBalancerIngress
}

// APIServiceSpec holds the fields of a ServiceSpec kubevs reads, with the API's meanings.
type APIServiceSpec struct {
	Type       v1.ServiceType
	ClusterIP  string
	ClusterIPs []string
	Ports      []ServicePort
	// ExternalIPs and LoadBalancerSourceRanges as given (parsed by Compute, which reports
	// the invalid ones).
	ExternalIPs              []string
	LoadBalancerSourceRanges []string
	SessionAffinity          v1.ServiceAffinity
	// AffinityTimeout is sessionAffinityConfig.clientIP.timeoutSeconds, 0 when not given.
	AffinityTimeout       int32
	ExternalTrafficPolicy v1.ServiceExternalTrafficPolicy
	// InternalTrafficPolicy is "" when not given.
	InternalTrafficPolicy v1.ServiceInternalTrafficPolicy
	HealthCheckNodePort   int32
}

// ServicePort is one port of an APIService.
type ServicePort struct {
	Name           string
	Protocol       v1.Protocol
	Port, NodePort int32
}

// APIServiceOf returns the APIService of s (nil for nil). It shares none of s's slices, so
// the decoded object can be collected.
func APIServiceOf(s *v1.Service) *APIService {
	if s == nil {
		return nil
	}
	out := &APIService{
		Namespace:       s.Namespace,
		Name:            s.Name,
		UID:             s.UID,
		ResourceVersion: s.ResourceVersion,
		Spec: APIServiceSpec{
			Type:                     known(s.Spec.Type, v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer, v1.ServiceTypeExternalName),
			ClusterIP:                s.Spec.ClusterIP,
			ClusterIPs:               slices.Clone(s.Spec.ClusterIPs),
			ExternalIPs:              slices.Clone(s.Spec.ExternalIPs),
			LoadBalancerSourceRanges: slices.Clone(s.Spec.LoadBalancerSourceRanges),
			SessionAffinity:          known(s.Spec.SessionAffinity, v1.ServiceAffinityNone, v1.ServiceAffinityClientIP),
			ExternalTrafficPolicy:    known(s.Spec.ExternalTrafficPolicy, v1.ServiceExternalTrafficPolicyCluster, v1.ServiceExternalTrafficPolicyLocal),
			HealthCheckNodePort:      s.Spec.HealthCheckNodePort,
		},
		Ingress: slices.Clone(s.Status.LoadBalancer.Ingress),
	}
	if len(out.Spec.ClusterIPs) > 0 && out.Spec.ClusterIPs[0] == out.Spec.ClusterIP {
		out.Spec.ClusterIPs[0] = out.Spec.ClusterIP // one copy of the address's text
	}
	_, out.ProxyName = s.Labels[ServiceProxyNameLabel]
	for _, k := range []string{SchedulerAnnotation, SourceRangesAnnotation} {
		if v, ok := s.Annotations[k]; ok {
			if out.Annotations == nil {
				out.Annotations = make(map[string]string, 2)
			}
			out.Annotations[k] = v
		}
	}
	if p := s.Spec.InternalTrafficPolicy; p != nil {
		out.Spec.InternalTrafficPolicy = known(*p, v1.ServiceInternalTrafficPolicyCluster, v1.ServiceInternalTrafficPolicyLocal)
	}
	if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		out.Spec.AffinityTimeout = *c.ClientIP.TimeoutSeconds
	}
	if len(s.Spec.Ports) > 0 {
		out.Spec.Ports = make([]ServicePort, len(s.Spec.Ports))
		for i, p := range s.Spec.Ports {
			out.Spec.Ports[i] = ServicePort{
				Name:     p.Name,
				Protocol: known(p.Protocol, v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP),
				Port:     p.Port,
				NodePort: p.NodePort,
			}
		}
	}
	return out
}

// known returns the constant among names equal to s, else s: the decoder's copy of a
// well-known value is then garbage.
func known[T ~string](s T, names ...T) T {
	for _, n := range names {
		if s == n {
			return n
		}
	}
	return s
}

// NamespacedName is the name of s.
func (s *APIService) NamespacedName() types.NamespacedName {
	return types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
}

// Reference is the object reference of s, for Events.
func (s *APIService) Reference() *v1.ObjectReference {
	return &v1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: s.Namespace, Name: s.Name, UID: s.UID, ResourceVersion: s.ResourceVersion}
}

// SameState reports whether a and b compute to the same kernel state: the same spec,
// label, annotations and ingress status. The identity and resource version do not count.
func (s *APIService) SameState(o *APIService) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.ProxyName == o.ProxyName && maps.Equal(s.Annotations, o.Annotations) &&
		equality.Semantic.DeepEqual(s.Spec, o.Spec) && equality.Semantic.DeepEqual(s.Ingress, o.Ingress)
}
