package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/runner"
)

func TestSkipLedger(t *testing.T) {
	a := types.NamespacedName{Namespace: "default", Name: "a"}
	b := types.NamespacedName{Namespace: "default", Name: "b"}
	refusedX := &desired.SkipError{Reason: desired.ReasonRefusedNodeAddress, Err: errors.New("external IP 10.0.0.1 refused")}
	refusedY := &desired.SkipError{Reason: desired.ReasonRefusedNodeAddress, Err: errors.New("external IP 10.0.0.2 refused")}
	// The same message for another reason is another part.
	notAllowedX := &desired.SkipError{Reason: desired.ReasonExternalIPNotAllowed, Err: errors.New("external IP 10.0.0.1 refused")}
	plain := errors.New("something else")
	type step struct {
		name   types.NamespacedName
		errs   []error
		retain []types.NamespacedName // when set, retain these before noting
		want   []string               // messages of the fresh skips
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"new skips are fresh, once", []step{
			{name: a, errs: []error{refusedX, refusedY, refusedX}, want: []string{"external IP 10.0.0.1 refused", "external IP 10.0.0.2 refused"}},
		}},
		{"the same skips again are not", []step{
			{name: a, errs: []error{refusedX}, want: []string{"external IP 10.0.0.1 refused"}},
			{name: a, errs: []error{refusedX}},
			{name: a, errs: []error{refusedX}},
		}},
		{"a skip added beside one kept", []step{
			{name: a, errs: []error{refusedX}, want: []string{"external IP 10.0.0.1 refused"}},
			{name: a, errs: []error{refusedY, refusedX}, want: []string{"external IP 10.0.0.2 refused"}},
		}},
		{"reason and message identify a part", []step{
			{name: a, errs: []error{refusedX}, want: []string{"external IP 10.0.0.1 refused"}},
			{name: a, errs: []error{notAllowedX}, want: []string{"external IP 10.0.0.1 refused"}},
			{name: a, errs: []error{plain}, want: []string{"something else"}},
		}},
		{"fixed, then skipped again: fresh again", []step{
			{name: a, errs: []error{refusedX}, want: []string{"external IP 10.0.0.1 refused"}},
			{name: a},
			{name: a, errs: []error{refusedX}, want: []string{"external IP 10.0.0.1 refused"}},
		}},
		{"Services are apart", []step{
			{name: a, errs: []error{refusedX}, want: []string{"external IP 10.0.0.1 refused"}},
			{name: b, errs: []error{refusedX}, want: []string{"external IP 10.0.0.1 refused"}},
			{name: a, errs: []error{refusedX}},
		}},
		{"a Service not retained counts anew", []step{
			{name: a, errs: []error{refusedX}, want: []string{"external IP 10.0.0.1 refused"}},
			{name: b, errs: []error{refusedY}, want: []string{"external IP 10.0.0.2 refused"}},
			{name: a, errs: []error{refusedX}, retain: []types.NamespacedName{b}, want: []string{"external IP 10.0.0.1 refused"}},
			{name: b, errs: []error{refusedY}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := skipLedger{}
			for i, s := range tt.steps {
				if s.retain != nil {
					l.retain(func(n types.NamespacedName) bool {
						for _, k := range s.retain {
							if k == n {
								return true
							}
						}
						return false
					})
				}
				var got []string
				for _, err := range l.note(s.name, s.errs) {
					got = append(got, err.Error())
				}
				if diff := cmp.Diff(s.want, got); diff != "" {
					t.Errorf("step %d: fresh skips (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// TestSkipsCountOncePerTransition: kubevs_objects_skipped_total counts a part of a Service
// when it becomes skipped, whatever recomputes the Service: not again for a partial sync of
// an unrelated change, nor for full syncs; but a refusal that new options cause (the host
// gained the address an externalIP claims) counts, though the Service did not change, and
// counts again after it was lifted and came back.
func TestSkipsCountOncePerTransition(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.ExternalIPAllowedCIDRs = []string{"203.0.113.0/24"}
	hosts := &hostAddrs{}
	hosts.set(nil, "127.0.0.1", "192.168.1.10")
	ext := service("ext", "10.96.0.10", 80)
	ext.Spec.ExternalIPs = []string{"198.51.100.7", "203.0.113.30"}
	h := startWithOptions(t, Options{Config: cfg, Kernel: k.kernel(), HostAddresses: hosts.get},
		ext, slice("ext", "node-b", "10.244.2.5"))
	eventually(t, "readiness", h.d.Ready)
	count := func(reason string) float64 {
		return gather(t, h.m)[`kubevs_objects_skipped_total{reason="`+reason+`"}`]
	}
	check := func(when string, notAllowed, nodeAddr float64) {
		t.Helper()
		if got := count("external_ip_not_allowed"); got != notAllowed {
			t.Errorf("%s: external_ip_not_allowed = %v, want %v", when, got, notAllowed)
		}
		if got := count("refused_node_address"); got != nodeAddr {
			t.Errorf("%s: refused_node_address = %v, want %v", when, got, nodeAddr)
		}
	}
	fullSync := func() {
		t.Helper()
		if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil {
			t.Fatalf("full sync: %v", err)
		}
	}
	eventually(t, "the allowed externalIP programmed", func() bool { return strings.Contains(k.ipvs.Dump(), "TCP:203.0.113.30:80") })
	check("after the first sync", 1, 0)

	// An endpoint change recomputes the Service in a partial sync: the skip stands.
	if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(),
		slice("ext", "node-b", "10.244.2.5", "10.244.2.6"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new endpoint programmed", func() bool { return strings.Contains(k.ipvs.Dump(), "-> 10.244.2.6:8080") })
	fullSync()
	check("after a partial and a full sync", 1, 0)

	// The host gains 203.0.113.30: new options, the unchanged Service is recomputed and the
	// externalIP refused; that is a new skip.
	hosts.set(nil, "127.0.0.1", "192.168.1.10", "203.0.113.30")
	fullSync()
	if strings.Contains(k.ipvs.Dump(), "TCP:203.0.113.30:80") {
		t.Fatalf("the externalIP that is now a node address is still programmed:\n%s", k.ipvs.Dump())
	}
	check("after the host gained the externalIP", 1, 1)
	fullSync()
	check("after one more full sync", 1, 1)

	// The address leaves the host (the externalIP is programmed again), then comes back.
	hosts.set(nil, "127.0.0.1", "192.168.1.10")
	fullSync()
	check("after the address left", 1, 1)
	hosts.set(nil, "127.0.0.1", "192.168.1.10", "203.0.113.30")
	fullSync()
	check("after the address came back", 1, 2)
}

// TestSkipsOfADeletedServiceCountAgain: a Service whose deletion lands in a full sync (no
// computation sees it gone) and that is created again with the same skip counts it again.
func TestSkipsOfADeletedServiceCountAgain(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.ExternalIPAllowedCIDRs = []string{"203.0.113.0/24"}
	ext := service("ext", "10.96.0.10", 80)
	ext.Spec.ExternalIPs = []string{"198.51.100.7"}
	h := startWithOptions(t, Options{Config: cfg, Kernel: k.kernel()}, ext)
	eventually(t, "readiness", h.d.Ready)
	const metric = `kubevs_objects_skipped_total{reason="external_ip_not_allowed"}`
	if got := gather(t, h.m)[metric]; got != 1 {
		t.Fatalf("%s = %v after the first sync, want 1", metric, got)
	}
	name := types.NamespacedName{Namespace: "default", Name: "ext"}
	// Holding kmu keeps any sync from taking the deletion until the next sync is made full.
	h.d.kmu.Lock()
	if err := h.client.CoreV1().Services("default").Delete(context.Background(), "ext", metav1.DeleteOptions{}); err != nil {
		h.d.kmu.Unlock()
		t.Fatal(err)
	}
	eventually(t, "the deletion seen", func() bool { svc, _ := h.d.tracker.Service(name); return svc == nil })
	h.d.needFull = true
	h.d.kmu.Unlock()
	eventually(t, "the ClusterIP withdrawn", func() bool { return !strings.Contains(k.ipvs.Dump(), "TCP:10.96.0.10:80") })

	h.create(ext)
	eventually(t, "the Service again", func() bool { return strings.Contains(k.ipvs.Dump(), "TCP:10.96.0.10:80") })
	if got := gather(t, h.m)[metric]; got != 2 {
		t.Errorf("%s = %v after the Service was created again, want 2", metric, got)
	}
}
