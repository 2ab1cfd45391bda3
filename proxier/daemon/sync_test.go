package daemon

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
)

func TestSkipReasonOfComputeErrors(t *testing.T) {
	svc := service("web", "10.96.0.10", 80)
	svc.Annotations = map[string]string{desired.SchedulerAnnotation: "random"}
	svc.Spec.Ports = append(svc.Spec.Ports, v1.ServicePort{Name: "x", Protocol: "ICMP", Port: 1})
	v6 := service("v6", "fd00::10", 80)
	bad := slice("web", "", "not-an-ip")
	var got []string
	for _, c := range []struct {
		svc *v1.Service
		eps []*discoveryv1.EndpointSlice
	}{{svc, []*discoveryv1.EndpointSlice{bad}}, {v6, nil}} {
		_, errs := desired.ComputeService(desired.Options{}, desired.Node{}, nil, c.svc, c.eps)
		for _, err := range errs {
			got = append(got, skipReason(err))
		}
	}
	got = append(got, skipReason(errors.New("something new")))
	want := []string{"invalid_scheduler_annotation", "unsupported_protocol", "invalid_address", "ip_family_disabled", "other"}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("skip reasons (-want +got):\n%s", diff)
	}
}

func TestDesiredOptions(t *testing.T) {
	node := &v1.Node{Spec: v1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24", "fd00:1::/64"}}}
	tests := []struct {
		name         string
		clusterCIDRs []string
		node         *v1.Node
		want         []ipset.Family
	}{
		{"nothing known: IPv4", nil, nil, nil},
		{"from the cluster CIDRs", []string{"fd00::/48"}, node, []ipset.Family{ipset.IPv6}},
		{"from the node's pod CIDRs", nil, node, []ipset.Family{ipset.IPv4, ipset.IPv6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.New()
			c.ClusterCIDRs = tt.clusterCIDRs
			if diff := cmp.Diff(tt.want, desiredOptions(c, tt.node).Families); diff != "" {
				t.Errorf("families (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredNode(t *testing.T) {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{v1.LabelTopologyZone: "z1"}},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: "192.168.1.10"},
			{Type: v1.NodeHostName, Address: "node-a"},
			{Type: v1.NodeExternalIP, Address: "203.0.113.7"},
		}},
	}
	got := desiredNode("node-a", n)
	want := desired.Node{Name: "node-a", Labels: n.Labels, Zone: "z1",
		Addresses: []netip.Addr{netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("203.0.113.7")}}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("desiredNode (-want +got):\n%s", diff)
	}
}
