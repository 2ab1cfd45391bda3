package daemon

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/runner"
)

// serviceEvents lists the "type reason message" of the core/v1 Events about the Service
// default/name, sorted.
func serviceEvents(t *testing.T, h *harness, name string) []string {
	t.Helper()
	l, err := h.client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Kind == "Service" && e.InvolvedObject.Name == name {
			out = append(out, e.Type+" "+e.Reason+" "+e.Message)
			if e.Count > 1 {
				t.Errorf("Event %q repeated %d times", e.Message, e.Count)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestGuardRefusesHijacks: a Service author tries to take the API server's address (from
// the kubeconfig and from the default/kubernetes EndpointSlice), the node's address and
// another Service's ClusterIP as externalIPs. Only the harmless externalIP is programmed;
// each refusal is counted by reason and reported once as a Warning Event on the Service,
// not again when the Service is computed again for an unrelated change.
func TestGuardRefusesHijacks(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	hosts := &hostAddrs{}
	hosts.set(nil, "127.0.0.1", "192.168.1.10")
	apiSlice := fixture.Slice("default/kubernetes", fixture.OfService("kubernetes"),
		fixture.AddressType(discoveryv1.AddressTypeIPv4),
		fixture.SlicePorts(fixture.SlicePort("https", v1.ProtocolTCP, 6443)),
		fixture.Endpoints(fixture.Endpoint("192.168.1.2", fixture.Ready(true))))
	evil := service("evil", "10.96.0.66", 80)
	evil.Spec.ExternalIPs = []string{"192.168.1.2", "192.168.1.3", "192.168.1.10", "10.96.0.10", "198.51.100.7"}
	h := startWithOptions(t, Options{Config: cfg, Kernel: k.kernel(), HostAddresses: hosts.get, APIServerHost: "https://192.168.1.3:6443"},
		service("kubernetes", "10.96.0.1", 443), apiSlice,
		service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"),
		evil, slice("evil", "node-b", "10.244.2.9"))

	want := []string{"TCP:10.96.0.1:443", "TCP:10.96.0.10:80", "TCP:10.96.0.66:80", "TCP:198.51.100.7:80"}
	eventually(t, "only the harmless externalIP programmed", func() bool { return slices.Equal(virtualServers(k), want) })
	wantEvents := []string{
		"Warning ExternalIPRefused service default/evil: external IP 10.96.0.10 refused: it is the ClusterIP of a Service",
		"Warning ExternalIPRefused service default/evil: external IP 192.168.1.10 refused: it is an address of the node",
		"Warning ExternalIPRefused service default/evil: external IP 192.168.1.2 refused: it is the API server's address",
		"Warning ExternalIPRefused service default/evil: external IP 192.168.1.3 refused: it is the API server's address",
	}
	eventually(t, "one Warning Event per refused address", func() bool { return slices.Equal(serviceEvents(t, h, "evil"), wantEvents) })
	counted := func(when string) {
		t.Helper()
		m := gather(t, h.m)
		for reason, n := range map[string]float64{"refused_api_server_address": 2, "refused_node_address": 1, "refused_cluster_ip": 1} {
			if got := m[`kubevs_objects_skipped_total{reason="`+reason+`"}`]; got != n {
				t.Errorf("%s: kubevs_objects_skipped_total{reason=%q} = %v, want %v", when, reason, got, n)
			}
		}
	}
	counted("after the first sync")
	dump := k.link.Dump()
	for _, ip := range []string{"192.168.1.2/", "192.168.1.3/", "192.168.1.10/"} {
		if strings.Contains(dump, " "+ip) {
			t.Errorf("refused address %s bound to kube-ipvs0:\n%s", ip, dump)
		}
	}

	// An endpoint change recomputes the Service (a partial sync), and a full sync follows:
	// the refusals stand, and no Event is repeated.
	if _, err := h.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(),
		slice("evil", "node-b", "10.244.2.9", "10.244.2.10"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new endpoint programmed", func() bool {
		return strings.Contains(k.ipvs.Dump(), "-> 10.244.2.10:8080")
	})
	touchNode(t, h, "again")
	if _, err := h.d.sync(h.ctx, runner.Periodic); err != nil {
		t.Fatalf("full sync: %v", err)
	}
	if got := serviceEvents(t, h, "evil"); !slices.Equal(got, wantEvents) {
		t.Errorf("after a recomputation the Events are %q, want the same four once", got)
	}
	counted("after a partial and full syncs")
}
