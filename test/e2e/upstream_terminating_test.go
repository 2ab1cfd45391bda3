package e2e

// Mirrors of upstream sig-network Service e2e tests about endpoints that are going away:
// terminating endpoints as a fallback when none is ready, and evicted pods.

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// Upstream: "should fallback to terminating endpoints when there are no ready endpoints with
// internalTrafficPolicy=Cluster", "... with internalTrafficPolicy=Local" and "should fallback
// to local terminating endpoints when there are no ready endpoints with
// externalTrafficPolicy=Cluster" (=Local: TestUpstreamHealthCheckNodePortOnlyTerminating).
// Both pods terminate; one still serves, the other does not: only the serving one gets
// traffic.
func TestUpstreamFallbackToTerminatingEndpoints(t *testing.T) {
	RequireProxier(t)
	for _, tc := range []struct {
		name     string
		mutate   func(*corev1.Service)
		external bool // through the NodePort from outside, else the ClusterIP from a pod
	}{
		{name: "itp-cluster", mutate: func(*corev1.Service) {}},
		{name: "itp-local", mutate: func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
		}},
		{name: "etp-cluster", external: true, mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t)
			svc := f.CreateService("fallback", tc.mutate)
			pods := f.CreatePods("fallback", 2)
			src, url := f.FromOutside(), f.NodePortURL(svc, "/hostname")
			if !tc.external {
				src, url = f.FromPod(f.CreatePod("client", "client")), ServiceURL(svc, "/hostname")
			}
			f.ExpectHTTP(src, url).Hostname(pods...)

			serving, gone := pods[0], pods[1]
			for _, p := range pods {
				if err := p.Terminate(f.ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := gone.SetReady(f.ctx, false); err != nil {
				t.Fatal(err)
			}
			f.expectEndpoints(svc,
				Endpoint{IP: serving.IP.String(), Serving: true, Terminating: true},
				Endpoint{IP: gone.IP.String(), Terminating: true})
			f.proxierSynced()
			f.ExpectHTTP(src, url).Hostname(serving)
			f.alwaysHostname(src, url, serving.Name, 8)
		})
	}
}

// setEvicted writes the status a kubelet writes for a pod it evicted (phase Failed, reason
// Evicted). The simulated pod's server keeps running, so any traffic still sent to it would
// be answered.
func (f *Framework) setEvicted(name string) {
	f.t.Helper()
	pods := f.Client.CoreV1().Pods(f.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pods.Get(f.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Phase = corev1.PodFailed
		cur.Status.Reason = "Evicted"
		cur.Status.Message = "The node was low on resource: ephemeral-storage."
		for i := range cur.Status.Conditions {
			if c := &cur.Status.Conditions[i]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
				c.Status, c.LastTransitionTime = corev1.ConditionFalse, metav1.Now()
			}
		}
		_, err = pods.UpdateStatus(f.ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		f.t.Fatalf("mark pod %s evicted: %v", name, err)
	}
}

// Upstream: "should be rejected for evicted pods (no endpoints exist)".
func TestUpstreamEvictedPodRejected(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	svc := f.CreateService("evicted")
	pod := f.CreatePod("evicted-0", "evicted")
	client := f.CreatePod("client", "client")
	addr := echoAddr(svc, "tcp-echo")
	f.expectEchoHostnames(f.FromPod(client), "tcp", addr, pod)

	f.setEvicted(pod.Name)
	f.expectEndpoints(svc)
	f.Eventually("tcp "+addr+" with only an evicted pod is refused within 2s", func(ctx context.Context) error {
		start := time.Now()
		got, err := Echo(ctx, f.FromPod(client), "tcp", addr, "hostname")
		took := time.Since(start)
		switch {
		case err == nil:
			return fmt.Errorf("answered by %q", got)
		case !errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Errorf("failed with %v after %s, not refused", err, took.Round(time.Millisecond))
		case took > 2*time.Second:
			return fmt.Errorf("refused only after %s", took.Round(time.Millisecond))
		}
		return nil
	})
}
