package daemon

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
)

// A Service whose scheduler module the kernel lacks (IPVS refuses its virtual server for
// good) is quarantined after a few failed syncs: syncs succeed again, the node stays healthy,
// another Service is programmed by a partial sync, and once the module is there the
// quarantined Service is programmed by its own retry, without any Service changing.
func TestQuarantinedServiceDoesNotPoisonTheNode(t *testing.T) {
	k := newFakeKernel()
	k.ipvs.SetHook(func(op, target string) error {
		if op == ipvstest.OpAddVirtualServer && strings.HasSuffix(target, " mh") {
			return fmt.Errorf("no ip_vs_mh module: %w", syscall.ENOENT)
		}
		return nil
	})
	bad := service("bad", "10.96.0.99", 80)
	bad.Annotations = map[string]string{desired.SchedulerAnnotation: "mh"}
	h := start(t, k, service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"), bad, slice("bad", "node-b", "10.244.2.7"))
	quarantined := `kubevs_objects_quarantined{reason="add_virtual_server"}`
	eventually(t, "the quarantine", func() bool {
		m := gather(t, h.m)
		return m[quarantined] == 1 && m[`kubevs_objects_quarantined_total{reason="add_virtual_server"}`] == 1 && h.d.Ready()
	})
	failures := gather(t, h.m)[`kubevs_sync_failures_total{mode="full"}`]
	if failures < 2 {
		t.Errorf("full sync failures before the quarantine = %v, want at least 2", failures)
	}
	partials := gather(t, h.m)[`kubevs_sync_duration_seconds{mode="partial"}`]
	h.create(service("api", "10.96.0.20", 443))
	h.create(slice("api", "node-b", "10.244.2.9"))
	eventually(t, "the second Service", func() bool { return strings.Contains(k.ipvs.Dump(), "TCP:10.96.0.20:443 rr\n  -> 10.244.2.9:8080") })
	eventually(t, "the partial sync's metrics", func() bool {
		return gather(t, h.m)[`kubevs_sync_duration_seconds{mode="partial"}`] > partials
	})
	m := gather(t, h.m)
	if m[`kubevs_sync_failures_total{mode="full"}`] != failures || m[`kubevs_sync_failures_total{mode="partial"}`] != 0 {
		t.Errorf("syncs failed after the quarantine: %v full (was %v), %v partial", m[`kubevs_sync_failures_total{mode="full"}`], failures, m[`kubevs_sync_failures_total{mode="partial"}`])
	}
	if s := h.d.Health().Status(); !s.Healthy || !s.Ready {
		t.Errorf("health = %+v, want healthy and ready", s)
	}
	// The module is loaded: the quarantined Service's own retry programs it.
	k.ipvs.SetHook(nil)
	eventually(t, "the recovered Service", func() bool {
		return strings.Contains(k.ipvs.Dump(), "TCP:10.96.0.99:80 mh\n  -> 10.244.2.7:8080") && gather(t, h.m)[quarantined] == 0
	})
}

// Dual-stack clusterCIDRs on a node whose kernel cannot turn on IPv6 forwarding (the fake
// does not know the parameter): the proxier gets ready with IPv6 disabled and reported, and
// programs the IPv4 Services.
func TestDualStackWithoutIPv6ForwardingDegrades(t *testing.T) {
	k := newFakeKernel()
	cfg := testConfig(t)
	cfg.ClusterCIDRs = []string{"10.244.0.0/16", "fd00:244::/56"}
	h := startWith(t, k.kernel(), cfg, service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"))
	eventually(t, "the IPv4 virtual server", func() bool {
		return k.ipvs.Dump() == "TCP:10.96.0.10:80 rr\n  -> 10.244.2.5:8080 weight 1\n" && h.d.Ready()
	})
	eventually(t, "the degraded metric", func() bool { return gather(t, h.m)[`kubevs_degraded{step="family inet6"}`] == 1 })
	if strings.Contains(k.nf.Save(), "# inet6") {
		t.Errorf("IPv6 rules written with IPv6 disabled:\n%s", k.nf.Save())
	}
}
