package reconcile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link/linktest"
)

// TestRandomSequencesMatchACleanSync drives a Reconciler through random partial changes
// (Apply, or a periodic resync after a clean probe told which Services changed) of a few Services (of every type, with NodePorts, LoadBalancer ingress, externalIPs,
// source ranges and traffic policies) that share addresses, ports and endpoints, with failures injected now
// and then and restarts (a new Reconciler adopting the kernel). After every step without failure (and drains finished), and after a Resync
// following a failure, the fake kernel must equal what a fresh Reconciler programs for the
// same Services from an empty kernel.
func TestRandomSequencesMatchACleanSync(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { randomSequence(t, seed, 200) })
	}
}

func randomSequence(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 5))
	names := []string{"ns/a", "ns/b", "ns/c", "ns/d"}
	vips := []string{"10.96.0.1", "10.96.0.2", "10.96.0.3"}
	ports := []string{"TCP:80", "UDP:53", "TCP:443", "SCTP:9"}
	pods := []string{"10.244.0.1@local", "10.244.0.2@local", "10.244.1.1", "10.244.1.2", "10.244.2.1"}
	svcTypes := []v1.ServiceType{v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer}
	ingress := []string{"198.51.100.1", "198.51.100.2"}
	extIPs := []string{"203.0.113.1", "203.0.113.2"} // never the node's address: the guard rails refuse it
	ranges := []string{"203.0.113.0/24", "192.168.1.0/24"}
	pick := func(from []string, max int) []string {
		var out []string
		for _, s := range from {
			if rng.IntN(max) == 0 {
				out = append(out, s)
			}
		}
		return out
	}
	// Services may even want the same virtual server (the API server prevents it, but the
	// Reconciler must stay consistent): the first by name wins, in both runs alike.
	randomSvc := func(i int) svc {
		if rng.IntN(4) == 0 {
			return svc{name: names[i]}
		}
		p := pick(ports, 3)
		if len(p) == 0 {
			p = ports[i : i+1]
		}
		s := svc{name: names[i], ip: vips[rng.IntN(len(vips))], ports: p, eps: pick(pods, 2), affinity: rng.IntN(3) == 0}
		// Node-facing parts: NodePorts on the node address, LoadBalancer ingress and
		// externalIPs (one of them the node's own address), source ranges, policies.
		s.typ = svcTypes[rng.IntN(len(svcTypes))]
		if s.typ == v1.ServiceTypeLoadBalancer {
			s.ingress = pick(ingress, 2)
			s.ranges = pick(ranges, 3)
		}
		s.extIPs = pick(extIPs, 4)
		s.extLocal = rng.IntN(3) == 0
		s.intLocal = rng.IntN(4) == 0
		return s
	}
	f, r := startSynced(t)
	c := ctx(t)
	current := map[types.NamespacedName]desired.Service{}
	injected := errors.New("injected")
	for step := 0; step < steps; step++ {
		var ch []svc
		for i := range names {
			if rng.IntN(2) == 0 {
				ch = append(ch, randomSvc(i))
			}
		}
		fail := rng.IntN(5) == 0
		if fail {
			switch rng.IntN(5) {
			case 0:
				f.ipvs.FailNext(ipvstest.OpAddRealServer, injected)
			case 1:
				f.link.FailNext(linktest.OpAddAddress, injected)
			case 2:
				f.ipset.FailNext(ipsettest.OpDel, injected)
			case 3:
				f.ipvs.FailNext(ipvstest.OpDeleteVirtualServer, injected)
			case 4:
				f.ipset.FailNext(ipsettest.OpAdd, injected)
			}
		}
		for name, s := range changes(t, ch...) {
			if s == nil {
				delete(current, name)
			} else {
				current[name] = *s
			}
		}
		var err error
		if !fail && rng.IntN(4) == 0 {
			// A periodic resync whose probe found nothing brings the changes (as the daemon's
			// full sync does, with the Services it computed again): only they are taken in.
			delta := map[types.NamespacedName]desired.Service{}
			for name, s := range changes(t, ch...) {
				if s != nil {
					delta[name] = *s
				} else {
					delta[name] = desired.Service{}
				}
			}
			holdFullRead(r)
			rd := r.BeginRead()
			rd.Run(c)
			if rd.Kind() != ReadProbe {
				t.Fatalf("step %d: the read was %q, want a clean probe", step, rd.Kind())
			}
			err = r.ResyncReadDelta(c, current, delta, rd)
		} else {
			err = r.Apply(c, changes(t, ch...))
		}
		// A failure may also stay queued for a later step, and fire during a Resync:
		// the daemon retries until a Resync succeeds, and so does this test.
		for try := 0; err != nil; try++ {
			if try == 5 {
				t.Fatalf("step %d: resync keeps failing: %v", step, err)
			}
			err = r.Resync(c, current)
		}
		if err := r.FinishDrains(c); err != nil {
			t.Fatalf("step %d: finish drains: %v", step, err)
		}
		if rng.IntN(20) == 0 { // the proxier restarts and adopts the kernel
			r = f.reconciler()
			must(t, r.Start(c))
			err := r.Resync(c, current)
			for try := 0; err != nil; try++ {
				if try == 5 {
					t.Fatalf("step %d: resync after restart keeps failing: %v", step, err)
				}
				err = r.Resync(c, current)
			}
		}
		must(t, realServersCounted(r))
		clean, cr := startSynced(t)
		must(t, cr.Resync(c, current))
		if diff := cmp.Diff(clean.dump(), f.dump()); diff != "" {
			t.Fatalf("step %d (changes %v): kernel differs from a clean sync (-clean +got):\n%s", step, fmt.Sprint(ch), diff)
		}
	}
}

// realServersCounted checks the model's running count of real servers against a count.
func realServersCounted(r *Reconciler) error {
	n := 0
	for _, st := range r.m.vs {
		n += len(st.rs)
	}
	if got := r.Stats().RealServers; got != n {
		return fmt.Errorf("Stats().RealServers = %d, the model holds %d", got, n)
	}
	return nil
}
