package e2e

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Upstream: "should have session affinity timeout work for NodePort service [LinuxOnly]": a
// client outside the node sticks to one pod through the NodePort until timeoutSeconds have
// passed since its last request, then reaches another (the ClusterIP variant is in
// TestSessionAffinityClientIP).
func TestUpstreamSessionAffinityTimeoutNodePort(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	timeout := int32(20)
	svc := f.CreateService("sticky-timeout", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}}
	})
	pods := f.CreatePods("sticky-timeout", 3)
	node, ok := netip.AddrFromSlice(f.Bed.NodeIP().To4())
	if !ok {
		t.Fatalf("node IP %v", f.Bed.NodeIP())
	}
	outside, ok := netip.AddrFromSlice(f.Bed.OutsideIP().To4())
	if !ok {
		t.Fatalf("outside IP %v", f.Bed.OutsideIP())
	}
	f.expectAffinityTimeout(affinityScenario{
		src:     f.FromOutside(),
		client:  outside,
		virtual: netip.AddrPortFrom(node, uint16(portNamed(svc, "http").NodePort)),
		url:     f.NodePortURL(svc, "/hostname"),
		pods:    pods,
		timeout: timeout,
	})
}
