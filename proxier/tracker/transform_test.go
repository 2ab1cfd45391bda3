package tracker

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset"
)

// managed is a managedFields entry as the API server records it.
func managed(manager, fields string) []metav1.ManagedFieldsEntry {
	return []metav1.ManagedFieldsEntry{{
		Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: &metav1.Time{}, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(fields),
	}}
}

// servedService is a Service as the API server serves it: every field Compute reads set
// (name-dependent), plus what a kubectl-applied Service carries and the proxier ignores.
func servedService(name, typ string, i int) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ns", UID: types.UID("0f2c6a4e-1d5b-4c8e-9a77-3b1e2d4f5a6" + fmt.Sprint(i%10)), ResourceVersion: fmt.Sprint(1000 + i),
			Generation: 1, CreationTimestamp: metav1.Unix(1700000000, 0),
			Labels: map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop", "tier": "backend"},
			Annotations: map[string]string{
				"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{},"labels":{"app.kubernetes.io/name":"` + name + `"},"name":"` + name + `","namespace":"ns"},"spec":{"ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}],"selector":{"app.kubernetes.io/name":"` + name + `"}}}`,
			},
			ManagedFields: managed("kubectl-client-side-apply", `{"f:metadata":{"f:annotations":{".":{},"f:kubectl.kubernetes.io/last-applied-configuration":{}},"f:labels":{".":{},"f:app.kubernetes.io/name":{}}},"f:spec":{"f:internalTrafficPolicy":{},"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:selector":{},"f:sessionAffinity":{},"f:type":{}}}`),
		},
		Spec: v1.ServiceSpec{
			Type:      v1.ServiceType(typ),
			ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), ClusterIPs: []string{fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPFamilyPolicy: ptr(v1.IPFamilyPolicySingleStack),
			Selector:              map[string]string{"app.kubernetes.io/name": name},
			Ports:                 []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
			SessionAffinity:       v1.ServiceAffinityNone,
			InternalTrafficPolicy: ptr(v1.ServiceInternalTrafficPolicyCluster),
		},
	}
	if typ != string(v1.ServiceTypeClusterIP) {
		s.Spec.Ports[0].NodePort = 30000 + int32(i%2000)
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
		s.Spec.AllocateLoadBalancerNodePorts = ptr(true)
	}
	if typ == string(v1.ServiceTypeLoadBalancer) {
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7", IPMode: ptr(v1.LoadBalancerIPModeVIP)}, {IP: "203.0.113.8", IPMode: ptr(v1.LoadBalancerIPModeProxy)}}
		s.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Provisioned", Message: "load balancer provisioned"}}
	}
	return s
}

// servedSlice is the EndpointSlice the controller writes for servedService(name), with n
// endpoints (the first one on node-a, not ready; the second terminating).
func servedSlice(name string, i, n int) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-x7k2p", GenerateName: name + "-", Namespace: "ns", UID: types.UID("6b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4" + fmt.Sprint(i%10)),
			ResourceVersion: fmt.Sprint(5000 + i), Generation: 3, CreationTimestamp: metav1.Unix(1700000000, 0),
			Labels: map[string]string{
				discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io",
				"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop", "tier": "backend",
			},
			Annotations:     map[string]string{TriggerTimeAnnotation: "2026-12-05T20:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: name, UID: "0f2c6a4e-1d5b-4c8e-9a77-3b1e2d4f5a60", Controller: ptr(true), BlockOwnerDeletion: ptr(true)}},
			ManagedFields:   managed("kube-controller-manager", `{"f:addressType":{},"f:endpoints":{},"f:metadata":{"f:annotations":{".":{},"f:endpoints.kubernetes.io/last-change-trigger-time":{}},"f:generateName":{},"f:labels":{".":{},"f:app.kubernetes.io/name":{},"f:app.kubernetes.io/part-of":{},"f:endpointslice.kubernetes.io/managed-by":{},"f:kubernetes.io/service-name":{},"f:tier":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"0f2c6a4e-1d5b-4c8e-9a77-3b1e2d4f5a60\"}":{}}},"f:ports":{}}`),
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(v1.ProtocolTCP), Port: ptr(int32(8080))}},
	}
	for j := range n {
		node := fmt.Sprintf("node-%c", 'a'+j%3)
		e := discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", 128+i/62500, i/250%250, (i%250)*0+j+1+(i%25)*10)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(j != 0), Serving: ptr(true), Terminating: ptr(j == 1)},
			Hostname:   ptr(fmt.Sprintf("%s-%d", name, j)),
			TargetRef:  &v1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: fmt.Sprintf("%s-7d9f8c6b5-%05d", name, j), UID: types.UID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6" + fmt.Sprint(j))},
			NodeName:   ptr(node),
			Zone:       ptr("zone-" + node[len(node)-1:]),
			Hints:      &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "zone-" + node[len(node)-1:]}}},
		}
		s.Endpoints = append(s.Endpoints, e)
	}
	return s
}

func servedNode() *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: "node-a", UID: "n1", ResourceVersion: "77",
			Labels:        map[string]string{v1.LabelTopologyZone: "zone-a", v1.LabelHostname: "node-a", "kubernetes.io/os": "linux"},
			Annotations:   map[string]string{"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
			ManagedFields: managed("kubelet", `{"f:status":{"f:conditions":{},"f:images":{}}}`),
		},
		Spec: v1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24", "fd00:244::/64"}, ProviderID: "kind://docker/kind/node-a",
			Taints: []v1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: v1.TaintEffectNoSchedule}}},
		Status: v1.NodeStatus{
			Addresses:  []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "192.168.1.10"}, {Type: v1.NodeExternalIP, Address: "198.51.100.10"}, {Type: v1.NodeHostName, Address: "node-a"}},
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}},
			Images:     []v1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}, SizeBytes: 320000}},
			NodeInfo:   v1.NodeSystemInfo{KernelVersion: "6.1.0", OSImage: "Debian GNU/Linux 12", KubeletVersion: "v1.36.0"},
		},
	}
}

// computeCases are Services exercising every field Compute reads.
func computeCases() []struct {
	name string
	svc  *v1.Service
} {
	lb := servedService("lb", "LoadBalancer", 3)
	lb.Annotations[desired.SchedulerAnnotation] = "wlc"
	lb.Annotations[desired.SourceRangesAnnotation] = "198.51.100.0/24"
	lb.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	lb.Spec.HealthCheckNodePort = 32000
	lb.Spec.ExternalIPs = []string{"192.0.2.9"}
	lb.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	lb.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr(int32(600))}}
	lbRanges := servedService("lb-ranges", "LoadBalancer", 4)
	lbRanges.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/25"}
	lbRanges.Spec.Ports = append(lbRanges.Spec.Ports, v1.ServicePort{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53, NodePort: 30053})
	local := servedService("local", "ClusterIP", 5)
	local.Spec.InternalTrafficPolicy = ptr(v1.ServiceInternalTrafficPolicyLocal)
	dual := servedService("dual", "NodePort", 6)
	dual.Spec.ClusterIPs = append(dual.Spec.ClusterIPs, "fd00::6")
	other := servedService("other", "ClusterIP", 7)
	other.Labels[desired.ServiceProxyNameLabel] = "someone-else"
	return []struct {
		name string
		svc  *v1.Service
	}{
		{"clusterip", servedService("web", "ClusterIP", 1)},
		{"nodeport", servedService("np", "NodePort", 2)},
		{"loadbalancer, local, affinity, scheduler, ranges annotation", lb},
		{"loadbalancer source ranges, two ports", lbRanges},
		{"internal traffic policy local", local},
		{"dual stack", dual},
		{"another proxy's", other},
	}
}

// TestTransformKeepsWhatComputeReads: the desired state computed from the stripped objects
// (Service, slices and Node, through derive) is the one computed from the served ones.
func TestTransformKeepsWhatComputeReads(t *testing.T) {
	cfg := &config.Configuration{Scheduler: "rr"}
	for _, tc := range computeCases() {
		t.Run(tc.name, func(t *testing.T) {
			slices := []*discoveryv1.EndpointSlice{servedSlice(tc.svc.Name, 1, 4)}
			sliceCopy := slices[0].DeepCopy()
			sliceCopy.Name += "-b"
			sliceCopy.Endpoints[0].Addresses = []string{"10.200.0.1"}
			slices = append(slices, sliceCopy)
			nodeB := servedNode()
			nodeB.Name, nodeB.Labels[v1.LabelTopologyZone] = "node-b", "zone-b"
			for _, n := range []*v1.Node{servedNode(), nodeB} {
				local := desired.PodSet{netip.MustParseAddr("10.128.0.12"): {}}
				want := compute(cfg, n, desired.APIServiceOf(tc.svc), desired.SlicesOf(slices...), local)
				sn, ss := strip(t, n).(*v1.Node), &strip(t, tc.svc).(*cachedService).APIService
				var sl []*desired.Slice
				for _, s := range slices {
					sl = append(sl, &strip(t, s).(*cachedSlice).Slice)
				}
				if got := compute(cfg, sn, ss, sl, local); got != want {
					t.Errorf("Compute differs through the transform:\nserved:\n%s\nstripped:\n%s", want, got)
				}
				if want == "" && !desired.Ignored(desired.APIServiceOf(tc.svc)) {
					t.Errorf("Compute gave nothing: the case tests nothing")
				}
			}
		})
	}
}

func compute(cfg *config.Configuration, n *v1.Node, svc *desired.APIService, slices []*desired.Slice, local desired.PodSet) string {
	o := derive.Options(cfg, n, nil)
	o.Families = []ipset.Family{ipset.IPv4, ipset.IPv6}
	s, errs := desired.ComputeService(o, derive.Node(n.Name, n), local, svc, slices)
	return fmt.Sprintf("%s\nerrors: %v\noptions: %+v", s, errs, o)
}

// cmpAddr compares addresses by value.
var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// strip runs the transform on a copy (it must not modify its argument) and checks it is
// idempotent.
func strip(t *testing.T, obj any) any {
	t.Helper()
	before, _ := yaml.Marshal(obj)
	out, err := Transform(obj)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := yaml.Marshal(obj)
	if string(before) != string(after) {
		t.Fatalf("Transform modified its argument")
	}
	again, err := Transform(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(out, again, cmp.AllowUnexported(cachedSlice{}), cmpAddr); diff != "" {
		t.Fatalf("Transform is not idempotent (-once +twice):\n%s", diff)
	}
	return out
}

// TestTransformStrips shows, as a golden file, all that is left of served objects.
func TestTransformStrips(t *testing.T) {
	var out []byte
	for _, o := range []any{computeCases()[2].svc, servedSlice("lb", 3, 2), servedNode()} {
		b, err := yaml.Marshal(strip(t, o))
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, "---\n"...), b...)
	}
	fixture.Golden(t, "transform-stripped", string(out))
	if other, err := Transform("not an object"); err != nil || other != "not an object" {
		t.Errorf("Transform(string) = %v, %v; want it unchanged", other, err)
	}
}

// TestTransformSharesRepeatedEndpointFields: two slices decoded apart hold, once
// transformed, one copy of each distinct node name and hint set, with the values unchanged,
// and the slice's trigger time.
func TestTransformSharesRepeatedEndpointFields(t *testing.T) {
	a := strip(t, servedSlice("a", 1, 4)).(*cachedSlice)
	b := strip(t, servedSlice("b", 2, 4)).(*cachedSlice)
	for j := range 4 {
		ea, eb := a.Endpoints[j], b.Endpoints[j]
		if unsafe.StringData(ea.NodeName()) != unsafe.StringData(eb.NodeName()) || ea.Hints() != eb.Hints() {
			t.Errorf("endpoint %d: the two slices hold their own copies of node name or hints", j)
		}
		want := servedSlice("a", 1, 4).Endpoints[j]
		if ea.NodeName() != *want.NodeName || ea.Ready() != *want.Conditions.Ready || ea.Serving() != *want.Conditions.Serving ||
			ea.Terminating() != *want.Conditions.Terminating || ea.Hints().Zones[0] != want.Hints.ForZones[0].Name ||
			ea.Addr() != netip.MustParseAddr(want.Addresses[0]) {
			t.Errorf("endpoint %d: values changed: %+v, want %+v", j, ea, want)
		}
	}
	if a.Endpoints[0].NodeName() == a.Endpoints[1].NodeName() {
		t.Error("two endpoints on two nodes hold one node name")
	}
	if a.trigger.IsZero() || a.trigger.Format(time.RFC3339Nano) != servedSlice("a", 1, 4).Annotations[TriggerTimeAnnotation] {
		t.Errorf("trigger time %v, want the annotation's", a.trigger)
	}
}

// TestTrackerCachesStrippedObjects: the informers run Transform, so what the tracker holds
// (and the informer caches behind it) is stripped.
func TestTrackerCachesStrippedObjects(t *testing.T) {
	ctx := context.Background()
	tr, client, _ := startTracker(t, servedService("web", "ClusterIP", 1), servedNode())
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(ctx, servedSlice("web", 1, 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the slice", func() bool {
		_, s := tr.Service(types.NamespacedName{Namespace: "ns", Name: "web"})
		return len(s) == 1
	})
	svc, slices := tr.Service(types.NamespacedName{Namespace: "ns", Name: "web"})
	want, _ := Transform(servedService("web", "ClusterIP", 1))
	if diff := cmp.Diff(&want.(*cachedService).APIService, svc); diff != "" {
		t.Errorf("cached Service (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(desired.SliceOf(servedSlice("web", 1, 3)), slices[0], cmpAddr); diff != "" {
		t.Errorf("cached slice (-want +got):\n%s", diff)
	}
	if tr.Node().Status.Images != nil {
		t.Errorf("the Node was cached unstripped")
	}
}

// TestCachedSliceIsAnObject: the informer keys a cached slice by namespace and name, and
// tells an update from a resync by its resource version: a slice without it would have
// every update taken for a resync, which handlers without a resync period may never see.
func TestCachedSliceIsAnObject(t *testing.T) {
	served := servedSlice("web", 1, 3)
	c := strip(t, served).(*cachedSlice)
	m, err := apimeta.Accessor(c)
	if err != nil {
		t.Fatal(err)
	}
	if m.GetNamespace() != "ns" || m.GetName() != served.Name || m.GetResourceVersion() != served.ResourceVersion {
		t.Errorf("metadata %s/%s at %q, want ns/%s at %q", m.GetNamespace(), m.GetName(), m.GetResourceVersion(), served.Name, served.ResourceVersion)
	}
	if key, err := cache.MetaNamespaceKeyFunc(c); err != nil || key != "ns/"+served.Name {
		t.Errorf("key %q, %v", key, err)
	}
	cp := c.DeepCopyObject().(*cachedSlice)
	if diff := cmp.Diff(c, cp, cmp.AllowUnexported(cachedSlice{}), cmpAddr); diff != "" {
		t.Errorf("copy differs:\n%s", diff)
	}
	e := cp.Endpoints[0]
	cp.Endpoints[0] = desired.NewEndpoint(e.Addr(), e.NodeName(), e.Hints(), !e.Ready(), e.Serving(), e.Terminating())
	if c.Endpoints[0].Ready() == cp.Endpoints[0].Ready() {
		t.Error("the copy shares its endpoints")
	}
}
