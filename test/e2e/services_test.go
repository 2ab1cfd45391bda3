package e2e

// First Service scenarios: they need kubevs-proxier on the node (RequireProxier) and show how
// the scenarios of the other issues plug into the bed.

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestClusterIPReachesEveryReadyBackend(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("web")
	pods := f.CreatePods("web", 2)
	client := f.CreatePod("client", "client")

	f.ExpectHTTP(f.FromNode(), ServiceURL(svc, "/hostname")).Hostname(pods...)
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(pods...)

	// A backend that stops being ready leaves the rotation; the other keeps serving.
	if err := pods[0].SetReady(f.Context(), false); err != nil {
		t.Fatal(err)
	}
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(pods[1])
}

func TestNodePortFromOutside(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("np", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	pods := f.CreatePods("np", 2)

	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(pods...)
}

func TestPodReachesItselfThroughItsService(t *testing.T) {
	RequirePlugin(t)
	f := New(t)
	svc := f.CreateService("self")
	pods := f.CreatePods("self", 1)

	// Hairpin: the only backend is the client itself, so the packet leaves the pod's bridge
	// port and must come back through it.
	f.ExpectHTTP(f.FromPod(pods[0]), ServiceURL(svc, "/hostname")).Hostname(pods[0])
}
