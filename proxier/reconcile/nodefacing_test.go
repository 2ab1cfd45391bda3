package reconcile

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
)

// Type changes of one Service, ClusterIP -> NodePort -> LoadBalancer -> ClusterIP ->
// ExternalName, and an externalIP, each with the exact operations it costs; at the end the
// kernel holds only the fixed state, as after a clean start.
func TestTypeChangesLeaveNothingBehind(t *testing.T) {
	f, r := startSynced(t, web)
	c := ctx(t)
	base := svc{name: web.name, ip: web.ip, ports: web.ports, eps: web.eps}
	with := func(change func(*svc)) svc { s := base; change(&s); return s }
	nodePort := with(func(s *svc) { s.typ = v1.ServiceTypeNodePort })
	lb := with(func(s *svc) {
		s.typ = v1.ServiceTypeLoadBalancer
		s.ingress = []string{"198.51.100.1"}
		s.ranges = []string{"203.0.113.0/24", "192.168.1.0/24"}
		s.extLocal = true
	})
	extIP := with(func(s *svc) { s.extIPs = []string{"198.51.100.7"} })
	steps := []struct {
		name   string
		change map[types.NamespacedName]*desired.Service
		ops    []string
		golden string // the whole fake kernel after the step, when set
	}{
		{
			name:   "ClusterIP to NodePort: a virtual server on the node address, not bound",
			change: changes(t, nodePort),
			ops: []string{
				"add-vs TCP:192.168.1.10:30080 rr",
				"add-rs TCP:192.168.1.10:30080 10.244.0.3:8080 weight 1",
				"add-rs TCP:192.168.1.10:30080 10.244.1.5:8080 weight 1",
				"add KUBE-NODE-PORT-TCP 30080",
			},
		},
		{
			name:   "NodePort to LoadBalancer with source ranges and externalTrafficPolicy=Local",
			change: changes(t, lb),
			golden: "type-change-loadbalancer",
			ops: []string{
				"update-rs TCP:192.168.1.10:30080 10.244.1.5:8080 weight 0",
				"add-vs TCP:198.51.100.1:80 rr",
				"add-rs TCP:198.51.100.1:80 10.244.0.3:8080 weight 1",
				"add-addr kube-ipvs0 198.51.100.1",
				"add KUBE-HEALTH-CHECK-NODE-PORT 32000",
				"add KUBE-IPVS-IPS 198.51.100.1",
				"add KUBE-LOAD-BALANCER 198.51.100.1,tcp:80",
				"add KUBE-LOAD-BALANCER-FW 198.51.100.1,tcp:80",
				"add KUBE-LOAD-BALANCER-LOCAL 198.51.100.1,tcp:80",
				"add KUBE-LOAD-BALANCER-SOURCE-CIDR 198.51.100.1,tcp:80,192.168.1.0/24 198.51.100.1,tcp:80,203.0.113.0/24",
				"add KUBE-LOAD-BALANCER-SOURCE-IP 198.51.100.1,tcp:80,198.51.100.1",
				"add KUBE-NODE-PORT-LOCAL-TCP 30080",
			},
		},
		{
			name:   "LoadBalancer to ClusterIP",
			change: changes(t, base),
			ops: []string{
				"delete-vs TCP:192.168.1.10:30080",
				"delete-vs TCP:198.51.100.1:80",
				"delete-addr kube-ipvs0 198.51.100.1",
				"del KUBE-HEALTH-CHECK-NODE-PORT 32000",
				"del KUBE-IPVS-IPS 198.51.100.1",
				"del KUBE-LOAD-BALANCER 198.51.100.1,tcp:80",
				"del KUBE-LOAD-BALANCER-FW 198.51.100.1,tcp:80",
				"del KUBE-LOAD-BALANCER-LOCAL 198.51.100.1,tcp:80",
				"del KUBE-LOAD-BALANCER-SOURCE-CIDR 198.51.100.1,tcp:80,192.168.1.0/24 198.51.100.1,tcp:80,203.0.113.0/24",
				"del KUBE-LOAD-BALANCER-SOURCE-IP 198.51.100.1,tcp:80,198.51.100.1",
				"del KUBE-NODE-PORT-LOCAL-TCP 30080",
				"del KUBE-NODE-PORT-TCP 30080",
			},
		},
		{
			name:   "an externalIP added",
			change: changes(t, extIP),
			ops: []string{
				"add-vs TCP:198.51.100.7:80 rr",
				"add-rs TCP:198.51.100.7:80 10.244.0.3:8080 weight 1",
				"add-rs TCP:198.51.100.7:80 10.244.1.5:8080 weight 1",
				"add-addr kube-ipvs0 198.51.100.7",
				"add KUBE-EXTERNAL-IP 198.51.100.7,tcp:80",
				"add KUBE-IPVS-IPS 198.51.100.7",
			},
		},
		{
			// ExternalName computes to the zero Service: everything of it goes.
			name:   "ClusterIP with externalIP to ExternalName",
			change: map[types.NamespacedName]*desired.Service{nn(web.name): {}},
			ops: []string{
				"delete-vs TCP:10.96.0.10:80",
				"delete-vs TCP:198.51.100.7:80",
				"delete-addr kube-ipvs0 10.96.0.10",
				"delete-addr kube-ipvs0 198.51.100.7",
				"del KUBE-CLUSTER-IP 10.96.0.10,tcp:80",
				"del KUBE-EXTERNAL-IP 198.51.100.7,tcp:80",
				"del KUBE-IPVS-IPS 10.96.0.10 198.51.100.7",
				"del KUBE-LOOP-BACK 10.244.0.3,tcp:8080,10.244.0.3",
			},
		},
	}
	for _, st := range steps {
		if err := r.Apply(c, st.change); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		f.checkNoReads(t, st.name)
		if st.golden != "" {
			fixture.Golden(t, st.golden, f.dump())
		}
		f.checkOps(t, st.name, st.ops)
	}
	f.now = f.now.Add(2 * time.Minute)
	must(t, r.FinishDrains(c))
	clean, _ := startSynced(t)
	if got, want := f.dump(), clean.dump(); got != want {
		t.Errorf("after the type changes the kernel differs from a clean start (-clean +got):\n%s", cmp.Diff(want, got))
	}
}

// A restart adopts node-facing virtual servers with zero writes; once their Service is gone
// (while kubevs was down) they are removed although their node address is not bound to the
// dummy link: the NodePort set members mark them. Foreign virtual servers on the node
// address stay.
func TestRestartAdoptsNodeFacing(t *testing.T) {
	lb := svc{name: "ns/lb", ip: "10.96.0.30", ports: []string{"TCP:80", "UDP:53", "SCTP:9"}, eps: []string{"10.244.0.3@local", "10.244.1.5"},
		typ: v1.ServiceTypeLoadBalancer, ingress: []string{"198.51.100.1"}}
	f, _ := startSynced(t, lb, dns)
	c := ctx(t)
	must(t, f.ipvs.AddVirtualServer(mustVS("TCP:192.168.1.10:22")))
	must(t, f.ipvs.AddVirtualServer(mustVS("UDP:192.168.1.10:30080")))
	f.reset()
	r := f.reconciler()
	must(t, r.Start(c))
	must(t, r.Resync(c, all(t, lb, dns)))
	f.checkOps(t, "restart with the same Services", nil)

	r = f.reconciler()
	must(t, r.Start(c))
	must(t, r.Resync(c, all(t, dns)))
	want := []string{
		"delete-vs SCTP:192.168.1.10:30009",
		"delete-vs TCP:192.168.1.10:30080",
		"delete-vs UDP:192.168.1.10:30053",
		"delete-vs SCTP:198.51.100.1:9",
		"delete-vs TCP:198.51.100.1:80",
		"delete-vs UDP:198.51.100.1:53",
	}
	got := f.ipvs.Ops()
	for _, op := range got {
		if op == "delete-vs TCP:192.168.1.10:22" || op == "delete-vs UDP:192.168.1.10:30080" {
			t.Errorf("foreign virtual server removed: %s", op)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("after the Service went while kubevs was down: %s not issued (ops %v)", w, got)
		}
	}
	clean, cr := startSynced(t, dns)
	must(t, cr.Resync(c, all(t, dns)))
	must(t, clean.ipvs.AddVirtualServer(mustVS("TCP:192.168.1.10:22")))
	must(t, clean.ipvs.AddVirtualServer(mustVS("UDP:192.168.1.10:30080")))
	if diff := cmp.Diff(clean.dump(), f.dump()); diff != "" {
		t.Errorf("kernel differs from a clean sync of what is left (-clean +got):\n%s", diff)
	}
}

// Cleanup removes node-facing virtual servers too, and leaves foreign ones on node addresses.
func TestCleanupRemovesNodeFacing(t *testing.T) {
	lb := svc{name: "ns/lb", ip: "10.96.0.30", ports: []string{"TCP:80", "SCTP:9"}, eps: []string{"10.244.1.5"},
		typ: v1.ServiceTypeLoadBalancer, ingress: []string{"198.51.100.1"}}
	f, _ := startSynced(t, lb)
	must(t, f.ipvs.AddVirtualServer(mustVS("TCP:192.168.1.10:22")))
	if err := Cleanup(ctx(t), f.kernel(), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := f.ipvs.Dump(), "TCP:192.168.1.10:22 rr\n"; got != want {
		t.Errorf("IPVS after cleanup = %q, want only the foreign %q", got, want)
	}
}
