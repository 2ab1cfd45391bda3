package reconcile

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/kubevs/kubevs/proxier/conntrack/conntracktest"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// dnsTwo is dns with two UDP (and TCP) endpoints; dns0 has none left.
var (
	dnsTwo = svc{name: "kube-system/dns", ip: "10.96.0.53", ports: []string{"UDP:53", "TCP:53"}, eps: []string{"10.244.3.1", "10.244.3.2", "10.244.3.3"}}
	dns0   = svc{name: "kube-system/dns", ip: "10.96.0.53", ports: []string{"UDP:53", "TCP:53"}, eps: []string{"10.244.3.3"}}
)

// The flows of every endpoint a sync removes, and of the pods that went away, are deleted
// in one call (one table dump), not one per endpoint.
func TestFlowDeletesAreOneCallPerSync(t *testing.T) {
	f, r := startSynced(t, dnsTwo)
	c := ctx(t)
	vip := mustAP("10.96.0.53:53")
	f.ct.Add(
		conntracktest.NATFlow(ipvs.UDP, mustAP("10.244.7.7:40000"), vip, mustAP("10.244.3.1:8053")),
		conntracktest.NATFlow(ipvs.UDP, mustAP("10.244.7.8:40000"), vip, mustAP("10.244.3.2:8053")),
		conntracktest.NATFlow(ipvs.UDP, mustAP("10.244.7.9:40000"), vip, mustAP("10.244.3.3:8053")),
	)
	r.DeletePodFlows(netip.MustParseAddr("10.244.7.9"))
	must(t, r.Apply(c, changes(t, dns0)))
	f.checkOps(t, "two endpoints and a pod gone", []string{
		"update-rs TCP:10.96.0.53:53 10.244.3.1:8053 weight 0",
		"update-rs TCP:10.96.0.53:53 10.244.3.2:8053 weight 0",
		"delete-rs UDP:10.96.0.53:53 10.244.3.1:8053",
		"delete-rs UDP:10.96.0.53:53 10.244.3.2:8053",
		"delete addr 10.244.7.9; reply-src UDP 10.244.3.1:8053 via 10.96.0.53:53; reply-src UDP 10.244.3.2:8053 via 10.96.0.53:53 = 3",
	})
	if got := f.ct.Dump(); got != "" {
		t.Errorf("flows left:\n%s", got)
	}
	if n := r.PendingFlowDeletes(); n != 0 {
		t.Errorf("%d filters pending after a successful delete", n)
	}
}

// A failed conntrack delete fails the sync and stays queued: the next sync (here a partial
// one that changes nothing else) deletes the flows.
func TestFailedFlowDeleteIsRetried(t *testing.T) {
	f, r := startSynced(t, dnsTwo)
	c := ctx(t)
	vip := mustAP("10.96.0.53:53")
	f.ct.Add(conntracktest.NATFlow(ipvs.UDP, mustAP("10.244.7.7:40000"), vip, mustAP("10.244.3.1:8053")))
	f.ct.FailNext(conntracktest.OpDelete, errors.New("injected: netlink busy"))
	if err := r.Apply(c, changes(t, dns0)); err == nil {
		t.Fatal("apply with a failing conntrack delete: want an error")
	}
	if f.ct.Dump() == "" {
		t.Fatal("the injected failure deleted the flow")
	}
	if n := r.PendingFlowDeletes(); n != 2 {
		t.Fatalf("%d filters pending after the failure, want 2", n)
	}
	f.reset()
	must(t, r.Apply(c, nil))
	f.checkOps(t, "retry", []string{"delete reply-src UDP 10.244.3.1:8053 via 10.96.0.53:53; reply-src UDP 10.244.3.2:8053 via 10.96.0.53:53 = 1"})
	if got := f.ct.Dump(); got != "" {
		t.Errorf("flows left after the retry:\n%s", got)
	}

	// A Resync retries too.
	f.ct.Add(conntracktest.NATFlow(ipvs.UDP, mustAP("10.244.7.7:40001"), vip, mustAP("10.244.3.3:8053")))
	f.ct.FailNext(conntracktest.OpDelete, errors.New("injected: netlink busy"))
	if err := r.Apply(c, changes(t, svc{name: dns0.name})); err == nil {
		t.Fatal("apply with a failing conntrack delete: want an error")
	}
	must(t, r.Resync(c, all(t)))
	if got := f.ct.Dump(); got != "" {
		t.Errorf("flows left after the resync:\n%s", got)
	}
}

// An endpoint removed from one Service keeps the UDP flows it answers for another Service
// that still has it: only the flows to the virtual server it left are deleted (they were
// all deleted, which cut the other Service's UDP clients mid-exchange).
func TestEndpointLeavingOneServiceKeepsAnotherServicesFlows(t *testing.T) {
	dnsB := svc{name: "kube-system/dns-b", ip: "10.96.0.54", ports: []string{"UDP:53"}, eps: []string{"10.244.3.1"}}
	f, r := startSynced(t, dns, dnsB)
	c := ctx(t)
	shared := mustAP("10.244.3.1:8053")
	f.ct.Add(
		conntracktest.NATFlow(ipvs.UDP, mustAP("10.244.7.7:40000"), mustAP("10.96.0.53:53"), shared),
		conntracktest.NATFlow(ipvs.UDP, mustAP("10.244.7.8:40000"), mustAP("10.96.0.54:53"), shared),
	)
	must(t, r.Apply(c, changes(t, dns1)))
	f.checkOps(t, "endpoint gone from dns only", []string{
		"update-rs TCP:10.96.0.53:53 10.244.3.1:8053 weight 0",
		"delete-rs UDP:10.96.0.53:53 10.244.3.1:8053",
		"delete reply-src UDP 10.244.3.1:8053 via 10.96.0.53:53 = 1",
	})
	if got, want := f.ct.Dump(), conntracktest.NATFlow(ipvs.UDP, mustAP("10.244.7.8:40000"), mustAP("10.96.0.54:53"), shared).String(); strings.TrimSpace(got) != want {
		t.Errorf("flows left:\n%s\nwant dns-b's only: %s", got, want)
	}
}
