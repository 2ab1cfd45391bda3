package desired

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// FuzzServiceAnnotations puts arbitrary kubevs.io/scheduler and load-balancer-source-ranges
// annotations (any user who can edit a Service writes them) on a LoadBalancer Service. The
// computation never panics and is deterministic; a scheduler it does not know is one skip of
// reason invalid_scheduler_annotation and the global scheduler is used; each source range that
// does not parse is one invalid_address skip; every source-range set member it emits carries
// a masked prefix of the ingress IP's family (what a hash:ip,port,net set can hold).
func FuzzServiceAnnotations(f *testing.F) {
	f.Add("wrr", "10.0.0.0/8, 192.168.1.1/24")
	f.Add("bogus", "::ffff:1.2.3.4/120,fd00::/64,x")
	f.Add("", " ,0.0.0.0/0")
	f.Add("mh", "::ffff:0:0/95,1.2.3.4/33")
	opts := Options{Families: []ipset.Family{ipset.IPv4, ipset.IPv6}}
	node := Node{Name: "node-a", Addresses: addrs("192.168.1.10", "fd00:1::10")}
	f.Fuzz(func(t *testing.T, sched, ranges string) {
		svc := service("lb", []string{"10.96.0.1"}, []v1.ServicePort{npPort("http", v1.ProtocolTCP, 80, 30080)},
			func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeLoadBalancer },
			ingress("203.0.113.5", "2001:db8::5"),
			func(s *v1.Service) {
				s.Annotations = map[string]string{SchedulerAnnotation: sched, SourceRangesAnnotation: ranges}
			})
		out, errs := ComputeService(opts, node, nil, APIServiceOf(svc), nil)
		again, errs2 := ComputeService(opts, node, nil, APIServiceOf(svc), nil)
		if diff := cmp.Diff(out, again, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" || len(errs) != len(errs2) {
			t.Fatalf("second computation differs:\n%s", diff)
		}
		var badSched, badAddr int
		for _, err := range errs {
			switch ReasonOf(err) {
			case ReasonInvalidScheduler:
				badSched++
			case ReasonInvalidAddress:
				badAddr++
			default:
				t.Fatalf("unexpected error %v", err)
			}
			var se *SkipError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), "ns/lb") {
				t.Fatalf("error %q does not name the Service", err)
			}
		}
		wantSched, wantBad := sched, 0
		if !ValidScheduler(sched) {
			wantSched, wantBad = DefaultScheduler, 1
		}
		if badSched != wantBad {
			t.Fatalf("scheduler %q: %d invalid_scheduler skips, want %d", sched, badSched, wantBad)
		}
		for _, vs := range out.VirtualServers {
			if vs.Scheduler != wantSched {
				t.Fatalf("scheduler %q: virtual server %s uses %q, want %q", sched, vs.Key, vs.Scheduler, wantSched)
			}
		}
		wantAddr := 0
		if ranges != "" {
			for _, s := range strings.Split(ranges, ",") {
				if _, err := netip.ParsePrefix(strings.TrimSpace(s)); err != nil {
					wantAddr++
				}
			}
		}
		if badAddr != wantAddr {
			t.Fatalf("ranges %q: %d invalid_address skips, want %d", ranges, badAddr, wantAddr)
		}
		for _, e := range out.Entries {
			if !strings.Contains(e.Set, "SOURCE-CIDR") {
				continue
			}
			parts := strings.Split(string(e.Entry), ",")
			ip, err1 := netip.ParseAddr(parts[0])
			p, err2 := netip.ParsePrefix(parts[len(parts)-1])
			if len(parts) != 3 || err1 != nil || err2 != nil || p != p.Masked() || p.Addr().Is4() != ip.Is4() || p.Addr().Is4In6() || p.Bits() == 0 {
				t.Fatalf("ranges %q: set %s gets %q", ranges, e.Set, e.Entry)
			}
		}
	})
}
