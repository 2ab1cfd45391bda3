package e2e

// Session affinity mirrors of upstream sig-network Service e2e tests: ClientIP affinity on a
// NodePort from outside the node, and switching affinity on a live Service. Requests end with
// a reset (getReset) so that no connection lingers in IPVS's table; the idle expiry of a
// template is not asserted here.

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/test/podsim"
)

// stickyRun is how many requests in a row must reach one backend to call a client sticky;
// with round robin over three backends and no affinity, two in a row never do.
const stickyRun = 15

// expectSticky waits until stickyRun requests in a row from src to url are answered by one
// backend, and returns its name.
func (f *Framework) expectSticky(src Source, url string) string {
	f.t.Helper()
	var pod string
	f.Eventually(fmt.Sprintf("%d requests in a row to %s from %s reach one backend", stickyRun, url, src.Name), func(ctx context.Context) error {
		first, err := getReset(ctx, src, url)
		if err != nil {
			return err
		}
		for i := 2; i <= stickyRun; i++ {
			got, err := getReset(ctx, src, url)
			if err != nil {
				return err
			}
			if got != first {
				return fmt.Errorf("request %d answered by %s, the first by %s", i, got, first)
			}
		}
		pod = first
		return nil
	})
	return pod
}

// setAffinity sets the Service's session affinity (ClientIP with the API's default timeout,
// or None).
func setAffinity(a corev1.ServiceAffinity) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.SessionAffinity = a
		s.Spec.SessionAffinityConfig = nil // defaulted by the API server for ClientIP
	}
}

// Upstream: "(C) should have session affinity work for NodePort service [LinuxOnly]".
func TestUpstreamSessionAffinityNodePort(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("sticky-np", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		setAffinity(corev1.ServiceAffinityClientIP)(s)
	})
	pods := f.CreatePods("sticky-np", 3)
	url := f.NodePortURL(svc, "/hostname")
	// Every pod is a real server first: stickiness over one real server would prove nothing.
	f.expectRealServers("TCP", f.nodePortAddr(svc, "http"), realServer(pods...)...)

	// From the outside host every request lands on one pod, and it is one of the Service's.
	got := f.expectSticky(f.FromOutside(), url)
	if !isPodName(pods, got) {
		t.Fatalf("sticky backend %q is none of the Service's pods", got)
	}
	// From a second address of the outside host too: affinity is per client, not global.
	second := f.addOutsideAddr(secondOutsideAddr)
	got = f.expectSticky(second, url)
	if !isPodName(pods, got) {
		t.Fatalf("sticky backend %q of %s is none of the Service's pods", got, second.Name)
	}
}

// Upstream: "(C) should be able to switch session affinity for service with type clusterIP"
// and "... for NodePort service" (one NodePort Service, seen through its ClusterIP from a pod
// and through its NodePort from outside).
func TestUpstreamSwitchSessionAffinity(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("switch", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	pods := f.CreatePods("switch", 3)
	client := f.CreatePod("client", "client")
	views := []struct {
		src Source
		url string
	}{
		{f.FromPod(client), ServiceURL(svc, "/hostname")},
		{f.FromOutside(), f.NodePortURL(svc, "/hostname")},
	}

	// None: requests spread over every pod.
	for _, v := range views {
		f.ExpectHTTP(v.src, v.url).Hostname(pods...)
	}
	// ClientIP: each client sticks to one pod.
	svc = f.updateService(svc, setAffinity(corev1.ServiceAffinityClientIP))
	if svc.Spec.SessionAffinityConfig == nil || svc.Spec.SessionAffinityConfig.ClientIP == nil {
		t.Fatalf("the API server defaulted no ClientIP config: %+v", svc.Spec)
	}
	for _, v := range views {
		if got := f.expectSticky(v.src, v.url); !isPodName(pods, got) {
			t.Fatalf("sticky backend %q from %s is none of the Service's pods", got, v.src.Name)
		}
	}
	// None again: requests spread once more, although the clients' affinity would still hold.
	f.updateService(svc, setAffinity(corev1.ServiceAffinityNone))
	for _, v := range views {
		f.ExpectHTTP(v.src, v.url).Hostname(pods...)
	}
}

// isPodName reports whether name is the name of one of pods.
func isPodName(pods []*podsim.Pod, name string) bool {
	for _, p := range pods {
		if p.Name == name {
			return true
		}
	}
	return false
}
