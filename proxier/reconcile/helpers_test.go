package reconcile

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/conntrack/conntracktest"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link/linktest"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
	"github.com/kubevs/kubevs/proxier/sysctl/sysctltest"
)

// fakes is a whole fake kernel.
type fakes struct {
	ipvs   *ipvstest.Fake
	link   *linktest.Fake
	ipset  *ipsettest.Fake
	nf     *netfiltertest.Fake
	ct     *conntracktest.Fake
	sysctl *sysctltest.Fake
	now    time.Time
}

func newFakes() *fakes {
	k := fixture.NewKernel(fixture.Sysctls())
	return &fakes{ipvs: k.IPVS, link: k.Link, ipset: k.IPSet, nf: k.Netfilter, ct: k.Conntrack, sysctl: k.Sysctl,
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (f *fakes) kernel() Kernel {
	return Kernel{IPVS: f.ipvs, Link: f.link, IPSet: f.ipset, Netfilter: f.nf, Conntrack: f.ct, Sysctl: f.sysctl}
}

var testOpts = desired.Options{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}, StrictARP: true}

func (f *fakes) reconciler() *Reconciler {
	return New(f.kernel(), Options{Desired: testOpts, DrainTimeout: time.Minute, Now: func() time.Time { return f.now }})
}

// dump prints the whole fake kernel (IPVS, links, sets) as text.
func (f *fakes) dump() string {
	return "# ipvs\n" + f.ipvs.Dump() + "# links\n" + f.link.Dump() + "# sets\n" + f.ipset.Dump() + "# iptables\n" + f.nf.Save()
}

// writes returns every write op issued since the last reset, grouped by subsystem (in
// issue order within each): ipvs, links (the idempotent ensure-dummy dropped), sets,
// rules (the restores: the ensure that reads the tables is dropped), conntrack, sysctls.
// Reads are left out.
func (f *fakes) writes() []string {
	var out []string
	out = append(out, f.ipvs.Ops()...)
	for _, op := range f.link.Ops() {
		if !strings.HasPrefix(op, linktest.OpEnsureDummy+" ") {
			out = append(out, op)
		}
	}
	for _, op := range f.ipset.Ops() {
		verb, _, _ := strings.Cut(op, " ")
		if verb != ipsettest.OpSets && verb != ipsettest.OpList && verb != ipsettest.OpCount {
			out = append(out, op)
		}
	}
	for _, op := range f.nf.Ops() {
		// "ensure inet" alone reads the tables (one iptables-save each); its "restore"
		// lines are the writes. A failed ensure stays.
		verb, fam, _ := strings.Cut(op, " ")
		if verb != netfiltertest.OpDump && verb != netfiltertest.OpVerify && !(verb == netfiltertest.OpEnsure && !strings.Contains(fam, " ")) {
			out = append(out, op)
		}
	}
	out = append(out, f.ct.Ops()...)
	out = append(out, f.sysctl.Ops()...)
	return out
}

func (f *fakes) reset() {
	f.ipvs.ResetOps()
	f.link.ResetOps()
	f.ipset.ResetOps()
	f.sysctl.ResetOps()
	f.nf.ResetOps()
	f.ct.ResetOps()
}

// checkNoReads fails if anything listed kernel state since the last reset: Apply must cost
// O(change) and work from the Reconciler's own model.
func (f *fakes) checkNoReads(t *testing.T, step string) {
	t.Helper()
	reads := map[string]int{
		ipvstest.OpVirtualServers:  f.ipvs.Calls(ipvstest.OpVirtualServers),
		ipvstest.OpRealServers:     f.ipvs.Calls(ipvstest.OpRealServers),
		ipvstest.OpRealServerTable: f.ipvs.Calls(ipvstest.OpRealServerTable),
		linktest.OpAddresses:       f.link.Calls(linktest.OpAddresses),
	}
	for _, op := range f.ipset.Ops() {
		if verb, _, _ := strings.Cut(op, " "); verb == ipsettest.OpSets || verb == ipsettest.OpList || verb == ipsettest.OpCount {
			reads["ipset "+verb]++
		}
	}
	for op, n := range reads {
		if n != 0 {
			t.Errorf("%s: %d reads of %s", step, n, op)
		}
	}
}

// checkOps compares the writes since the last reset with want, then resets.
func (f *fakes) checkOps(t *testing.T, step string, want []string) {
	t.Helper()
	got := f.writes()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: operations (-want +got):\n%s", step, diff)
	}
	f.reset()
}

// svc describes a test Service: "ns/name" with one ClusterIP and ports "proto:port", and
// endpoints "ip" (remote) or "ip@local" (on this node).
type svc struct {
	name     string
	ip       string
	ports    []string
	eps      []string
	affinity bool
	sched    string
	opts     *desired.Options // nil: testOpts

	// Node-facing parts: the type (empty: ClusterIP; NodePort and LoadBalancer get the
	// NodePort 30000+port), LoadBalancer ingress IPs, source ranges, externalIPs and the
	// traffic policies.
	typ      v1.ServiceType
	ingress  []string
	ranges   []string
	extIPs   []string
	extLocal bool
	intLocal bool
}

const nodeName = "node-a"

// nodeIP is the test node's address: the default NodePort address.
var nodeIP = netip.MustParseAddr("192.168.1.10")

// compute turns s into desired state through desired.ComputeService, as the daemon does.
func (s svc) compute(t testing.TB) desired.Service {
	t.Helper()
	ports := fixture.PortSpecs(s.ports...)
	if s.typ == v1.ServiceTypeNodePort || s.typ == v1.ServiceTypeLoadBalancer {
		for i := range ports {
			ports[i].NodePort = 30000 + ports[i].Port
		}
	}
	obj := fixture.Service(s.name, fixture.ClusterIPs(s.ip), fixture.Ports(ports...))
	if s.affinity {
		obj.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	}
	if s.sched != "" {
		obj.Annotations = map[string]string{desired.SchedulerAnnotation: s.sched}
	}
	if s.typ != "" {
		obj.Spec.Type = s.typ
	}
	for _, ip := range s.ingress {
		obj.Status.LoadBalancer.Ingress = append(obj.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
	}
	obj.Spec.LoadBalancerSourceRanges = s.ranges
	obj.Spec.ExternalIPs = s.extIPs
	if s.extLocal {
		obj.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		obj.Spec.HealthCheckNodePort = 32000
	}
	if s.intLocal {
		obj.Spec.InternalTrafficPolicy = ptr(v1.ServiceInternalTrafficPolicyLocal)
	}
	at := discoveryv1.AddressTypeIPv4
	if strings.Contains(s.ip, ":") {
		at = discoveryv1.AddressTypeIPv6
	}
	var eps []discoveryv1.Endpoint
	for _, e := range s.eps {
		addr, loc, _ := strings.Cut(e, "@")
		node := "node-b"
		if loc == "local" {
			node = nodeName
		}
		eps = append(eps, fixture.Endpoint(addr, fixture.OnNode(node)))
	}
	sl := fixture.Slice(s.name, fixture.AddressType(at), fixture.TargetPorts(obj, 8000), fixture.Endpoints(eps...))
	opts := testOpts
	if s.opts != nil {
		opts = *s.opts
	}
	out, errs := desired.ComputeService(opts, desired.Node{Name: nodeName, Addresses: []netip.Addr{nodeIP}}, nil, desired.APIServiceOf(obj), desired.SlicesOf(sl))
	if len(errs) > 0 {
		t.Fatalf("compute %s: %v", s.name, errs)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func nn(s string) types.NamespacedName {
	ns, name, _ := strings.Cut(s, "/")
	return types.NamespacedName{Namespace: ns, Name: name}
}

// all computes a full set of Services.
func all(t testing.TB, ss ...svc) map[types.NamespacedName]desired.Service {
	out := map[types.NamespacedName]desired.Service{}
	for _, s := range ss {
		out[nn(s.name)] = s.compute(t)
	}
	return out
}

// changes computes a partial change; a svc with no ip means the Service is gone.
func changes(t testing.TB, ss ...svc) map[types.NamespacedName]*desired.Service {
	out := map[types.NamespacedName]*desired.Service{}
	for _, s := range ss {
		if s.ip == "" {
			out[nn(s.name)] = nil
			continue
		}
		d := s.compute(t)
		out[nn(s.name)] = &d
	}
	return out
}
