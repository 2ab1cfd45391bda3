package desired

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func servedLB() *v1.Service {
	local, timeout, mode := v1.ServiceInternalTrafficPolicyLocal, int32(600), v1.LoadBalancerIPModeVIP
	// The decoder gives every string its own bytes: so do these.
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "lb", UID: "u-1", ResourceVersion: "7",
			Labels:        map[string]string{ServiceProxyNameLabel: "", "app": "web"},
			Annotations:   map[string]string{SchedulerAnnotation: "lc", "other": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: v1.ServiceSpec{
			Type:                     v1.ServiceType(strings.Clone("LoadBalancer")),
			ClusterIP:                "10.96.0.1",
			ClusterIPs:               []string{strings.Clone("10.96.0.1")},
			Ports:                    []v1.ServicePort{{Name: "http", Protocol: v1.Protocol(strings.Clone("UDP")), Port: 53, NodePort: 30053}},
			ExternalIPs:              []string{"192.0.2.1"},
			LoadBalancerSourceRanges: []string{"198.51.100.0/24"},
			SessionAffinity:          v1.ServiceAffinityClientIP,
			SessionAffinityConfig:    &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &timeout}},
			ExternalTrafficPolicy:    v1.ServiceExternalTrafficPolicy(strings.Clone("Local")),
			InternalTrafficPolicy:    &local,
			HealthCheckNodePort:      32000,
			Selector:                 map[string]string{"app": "web"},
		},
		Status: v1.ServiceStatus{LoadBalancer: v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{{IP: "203.0.113.1", IPMode: &mode}}}},
	}
}

// TestAPIServiceOf: every field Compute reads is carried, well-known values point to the
// package's constants (the decoder's copies can be collected), and nothing is shared with
// the served object.
func TestAPIServiceOf(t *testing.T) {
	served := servedLB()
	got := APIServiceOf(served)
	want := &APIService{
		Namespace: "ns", Name: "lb", UID: "u-1", ResourceVersion: "7",
		ProxyName:   true,
		Annotations: map[string]string{SchedulerAnnotation: "lc"},
		Spec: APIServiceSpec{
			Type: v1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1"},
			Ports:                    []ServicePort{{Name: "http", Protocol: v1.ProtocolUDP, Port: 53, NodePort: 30053}},
			ExternalIPs:              []string{"192.0.2.1"},
			LoadBalancerSourceRanges: []string{"198.51.100.0/24"},
			SessionAffinity:          v1.ServiceAffinityClientIP, AffinityTimeout: 600,
			ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyLocal, InternalTrafficPolicy: v1.ServiceInternalTrafficPolicyLocal,
			HealthCheckNodePort: 32000,
		},
		Ingress: served.Status.LoadBalancer.Ingress,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("APIServiceOf (-want +got):\n%s", diff)
	}
	for name, pair := range map[string][2]string{
		"type":                    {string(got.Spec.Type), string(v1.ServiceTypeLoadBalancer)},
		"protocol":                {string(got.Spec.Ports[0].Protocol), string(v1.ProtocolUDP)},
		"externalTrafficPolicy":   {string(got.Spec.ExternalTrafficPolicy), string(v1.ServiceExternalTrafficPolicyLocal)},
		"clusterIPs[0]/clusterIP": {got.Spec.ClusterIPs[0], got.Spec.ClusterIP},
	} {
		if unsafe.StringData(pair[0]) != unsafe.StringData(pair[1]) {
			t.Errorf("%s: the decoded copy is kept", name)
		}
	}
	served.Spec.ClusterIPs[0], served.Spec.ExternalIPs[0], served.Spec.LoadBalancerSourceRanges[0] = "x", "x", "x"
	served.Status.LoadBalancer.Ingress[0].IP, served.Spec.Ports[0].Port = "x", 1
	if diff := cmp.Diff(want.Spec, got.Spec); diff != "" || got.Ingress[0].IP != "203.0.113.1" {
		t.Errorf("the APIService changed with the served object: %s", diff)
	}
	if APIServiceOf(nil) != nil {
		t.Error("APIServiceOf(nil) is not nil")
	}
}

// TestAPIServiceSameState: identity and resource version do not count, the spec, label,
// annotations and ingress do, and a nil list equals an empty one (as the API treats them).
func TestAPIServiceSameState(t *testing.T) {
	a := APIServiceOf(servedLB())
	b := *a
	b.ResourceVersion, b.UID = "8", "u-2"
	if !a.SameState(&b) {
		t.Error("a new resource version is a new state")
	}
	b.Spec.ExternalIPs = nil
	c := b
	c.Spec.ExternalIPs = []string{}
	if !b.SameState(&c) {
		t.Error("nil and empty externalIPs differ")
	}
	for name, change := range map[string]func(s *APIService){
		"spec":       func(s *APIService) { s.Spec.HealthCheckNodePort = 1 },
		"label":      func(s *APIService) { s.ProxyName = false },
		"annotation": func(s *APIService) { s.Annotations = nil },
		"ingress":    func(s *APIService) { s.Ingress = nil },
	} {
		d := *a
		change(&d)
		if a.SameState(&d) {
			t.Errorf("a change of %s is no change", name)
		}
	}
	if a.SameState(nil) || !(*APIService)(nil).SameState(nil) {
		t.Error("nil compares wrong")
	}
}
