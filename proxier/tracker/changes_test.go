package tracker

import (
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
)

var start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func svc(name, clusterIP string, port int32, labels map[string]string) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: labels},
		Spec: v1.ServiceSpec{
			ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: port}},
		},
	}
}

func slice(svcName, name string, trigger time.Time, ips ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svcName},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080))}},
	}
	if !trigger.IsZero() {
		s.Annotations = map[string]string{TriggerTimeAnnotation: trigger.Format(time.RFC3339Nano)}
	}
	for _, ip := range ips {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}})
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// cached is es as the informer cache holds it (nil for nil).
func cached(es *discoveryv1.EndpointSlice) *cachedSlice {
	if es == nil {
		return nil
	}
	return stripSlice(es)
}

func nn(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }

// op is one event fed to the change tracker.
type op struct {
	svc       string
	service   *v1.Service // set (nil with !slice: delete the Service)
	slice     bool
	sliceName string
	es        *discoveryv1.EndpointSlice // nil: delete the slice
	take      bool                       // take instead of an event
	touch     bool
}

func TestChanges(t *testing.T) {
	a := svc("a", "10.96.0.1", 80, nil)
	aPort81 := svc("a", "10.96.0.1", 81, nil)
	aOther := svc("a", "10.96.0.1", 80, map[string]string{desired.ServiceProxyNameLabel: "other"})
	aHeadless := svc("a", v1.ClusterIPNone, 80, nil)
	aRV := svc("a", "10.96.0.1", 80, nil)
	aRV.ResourceVersion = "42"
	aLB := svc("a", "10.96.0.1", 80, nil)
	aLB.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	aLBOther := svc("a", "10.96.0.1", 80, nil)
	aLBOther.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.8"}}
	aLBHostname := svc("a", "10.96.0.1", 80, nil)
	aLBHostname.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7", IPMode: ptr(v1.LoadBalancerIPModeProxy)}}
	aCond := svc("a", "10.96.0.1", 80, nil)
	aCond.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue}}
	s1 := slice("a", "a-1", time.Time{}, "10.244.0.2")
	s1b := slice("a", "a-1", time.Time{}, "10.244.0.3")
	s1Trig := slice("a", "a-1", start.Add(time.Minute), "10.244.0.2")

	tests := []struct {
		name string
		ops  []op
		want []string
	}{
		{"new service", []op{{svc: "a", service: a}}, []string{"ns/a"}},
		{"new service and slice", []op{{svc: "a", service: a}, {svc: "a", slice: true, sliceName: "a-1", es: s1}}, []string{"ns/a"}},
		{"created then deleted cancels", []op{{svc: "a", service: a}, {svc: "a"}}, nil},
		{"changed back cancels", []op{{svc: "a", service: a}, {take: true}, {svc: "a", service: aPort81}, {svc: "a", service: a}}, nil},
		{"resource version alone is no change", []op{{svc: "a", service: a}, {take: true}, {svc: "a", service: aRV}}, nil},
		{"slice changed back cancels", []op{{svc: "a", service: a}, {svc: "a", slice: true, sliceName: "a-1", es: s1}, {take: true},
			{svc: "a", slice: true, sliceName: "a-1", es: s1b}, {svc: "a", slice: true, sliceName: "a-1", es: s1}}, nil},
		{"trigger time alone is no change", []op{{svc: "a", slice: true, sliceName: "a-1", es: s1}, {take: true},
			{svc: "a", slice: true, sliceName: "a-1", es: s1Trig}}, nil},
		{"slice endpoint changed", []op{{svc: "a", service: a}, {svc: "a", slice: true, sliceName: "a-1", es: s1}, {take: true},
			{svc: "a", slice: true, sliceName: "a-1", es: s1b}}, []string{"ns/a"}},
		{"slice deleted", []op{{svc: "a", slice: true, sliceName: "a-1", es: s1}, {take: true},
			{svc: "a", slice: true, sliceName: "a-1"}}, []string{"ns/a"}},
		{"gaining the service-proxy-name label is a deletion", []op{{svc: "a", service: a}, {take: true}, {svc: "a", service: aOther}}, []string{"ns/a"}},
		{"losing the service-proxy-name label is a creation", []op{{svc: "a", service: aOther}, {take: true}, {svc: "a", service: a}}, []string{"ns/a"}},
		{"another proxy's service deleted is no change", []op{{svc: "a", service: aOther}, {take: true}, {svc: "a"}}, nil},
		{"headless service is no change", []op{{svc: "a", service: aHeadless}}, nil},
		{"touch forces a change", []op{{svc: "a", service: a}, {take: true}, {svc: "a", touch: true}}, []string{"ns/a"}},
		{"touch survives a cancel-out", []op{{svc: "a", service: a}, {take: true}, {svc: "a", touch: true},
			{svc: "a", service: aPort81}, {svc: "a", service: a}}, []string{"ns/a"}},
		// The ingress IPs are set by UpdateStatus after the Service was created (and often
		// already synced): a status-only update is a change.
		{"load balancer ingress set by a status update", []op{{svc: "a", service: a}, {take: true}, {svc: "a", service: aLB}}, []string{"ns/a"}},
		{"load balancer ingress IP changed", []op{{svc: "a", service: aLB}, {take: true}, {svc: "a", service: aLBOther}}, []string{"ns/a"}},
		{"load balancer ingress IP mode changed", []op{{svc: "a", service: aLB}, {take: true}, {svc: "a", service: aLBHostname}}, []string{"ns/a"}},
		{"load balancer ingress removed", []op{{svc: "a", service: aLB}, {take: true}, {svc: "a", service: a}}, []string{"ns/a"}},
		{"other status alone is no change", []op{{svc: "a", service: a}, {take: true}, {svc: "a", service: aCond}}, nil},
		{"take starts a new round", []op{{svc: "a", service: a}, {take: true}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChanges(start)
			for _, o := range tt.ops {
				switch {
				case o.take:
					c.take()
				case o.touch:
					c.touch(nn(o.svc))
				case o.slice:
					c.setSlice(nn(o.svc), o.sliceName, cached(o.es))
				default:
					c.setService(nn(o.svc), desired.APIServiceOf(o.service))
				}
			}
			var got []string
			for n := range c.names() {
				got = append(got, n.String())
			}
			sort.Strings(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pending changes (-want +got):\n%s", diff)
			}
			taken, _ := c.take()
			if len(taken) != len(got) {
				t.Errorf("take returned %d services, names %d", len(taken), len(got))
			}
			if n := len(c.names()); n != 0 {
				t.Errorf("after take, %d changes pending, want 0", n)
			}
		})
	}
}

func TestChangesTriggerTimes(t *testing.T) {
	c := newChanges(start)
	old := slice("a", "a-1", start.Add(-time.Hour), "10.244.0.1") // listed at start: not counted
	c.setSlice(nn("a"), "a-1", cached(old))
	c.setSlice(nn("a"), "a-1", cached(slice("a", "a-1", start.Add(time.Second), "10.244.0.2")))
	c.setSlice(nn("a"), "a-2", cached(slice("a", "a-2", start.Add(2*time.Second), "10.244.0.3")))
	c.setSlice(nn("b"), "b-1", cached(slice("b", "b-1", start.Add(3*time.Second), "10.244.0.4")))
	c.setSlice(nn("b"), "b-1", nil) // b cancels out: its trigger is dropped
	names, triggers := c.take()
	sort.Slice(triggers, func(i, j int) bool { return triggers[i].Before(triggers[j]) })
	if diff := cmp.Diff([]time.Time{start.Add(time.Second), start.Add(2 * time.Second)}, triggers); diff != "" {
		t.Errorf("trigger times (-want +got):\n%s", diff)
	}
	if _, ok := names[nn("a")]; !ok || len(names) != 1 {
		t.Errorf("changed = %v, want only ns/a", names)
	}
}
