package reconcile

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/ktesting"

	"github.com/kubevs/kubevs/proxier/conntrack/conntracktest"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset"

	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link/linktest"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
	"github.com/kubevs/kubevs/proxier/sysctl/sysctltest"
)

func ctx(t *testing.T) context.Context {
	_, c := ktesting.NewTestContext(t)
	return c
}

var (
	web     = svc{name: "default/web", ip: "10.96.0.10", ports: []string{"TCP:80"}, eps: []string{"10.244.1.5", "10.244.0.3@local"}}
	web3    = svc{name: "default/web", ip: "10.96.0.10", ports: []string{"TCP:80"}, eps: []string{"10.244.1.5", "10.244.0.3@local", "10.244.2.7"}}
	dns     = svc{name: "kube-system/dns", ip: "10.96.0.53", ports: []string{"UDP:53", "TCP:53"}, eps: []string{"10.244.3.1", "10.244.3.2"}}
	dns1    = svc{name: "kube-system/dns", ip: "10.96.0.53", ports: []string{"UDP:53", "TCP:53"}, eps: []string{"10.244.3.2"}}
	goneWeb = svc{name: "default/web"}
)

// startSynced returns a fake kernel and a Reconciler started and resynced to ss, with the
// operation logs reset.
func startSynced(t *testing.T, ss ...svc) (*fakes, *Reconciler) {
	t.Helper()
	f := newFakes()
	r := f.reconciler()
	if err := r.Start(ctx(t)); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := r.Resync(ctx(t), all(t, ss...)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	f.reset()
	return f, r
}

func TestStartOnEmptyKernel(t *testing.T) {
	f := newFakes()
	r := f.reconciler()
	if err := r.Start(ctx(t)); err != nil {
		t.Fatalf("start: %v", err)
	}
	f.checkOps(t, "start", []string{
		"create KUBE-CLUSTER-IP hash:ip,port inet",
		"create KUBE-LOOP-BACK hash:ip,port,ip inet",
		"create KUBE-IPVS-IPS hash:ip inet",
		"create KUBE-NODE-PORT-TCP bitmap:port ",
		"create KUBE-NODE-PORT-LOCAL-TCP bitmap:port ",
		"create KUBE-NODE-PORT-UDP bitmap:port ",
		"create KUBE-NODE-PORT-LOCAL-UDP bitmap:port ",
		"create KUBE-NODE-PORT-SCTP-HASH hash:ip,port inet",
		"create KUBE-NODE-PORT-LOCAL-SCTP-HASH hash:ip,port inet",
		"create KUBE-HEALTH-CHECK-NODE-PORT bitmap:port ",
		"create KUBE-LOAD-BALANCER hash:ip,port inet",
		"create KUBE-LOAD-BALANCER-LOCAL hash:ip,port inet",
		"create KUBE-LOAD-BALANCER-FW hash:ip,port inet",
		"create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net inet",
		"create KUBE-LOAD-BALANCER-SOURCE-IP hash:ip,port,ip inet",
		"create KUBE-EXTERNAL-IP hash:ip,port inet",
		"create KUBE-EXTERNAL-IP-LOCAL hash:ip,port inet",
		"restore inet filter",
		"restore inet nat",
		"set net/ipv4/vs/conntrack 1",
		"set net/ipv4/vs/expire_nodest_conn 1",
		"set net/ipv4/vs/expire_quiescent_template 1",
		"set net/ipv4/conf/all/arp_ignore 1",
	})
	want := []SysctlChange{
		{Name: "net/ipv4/vs/conntrack", Old: "0", New: "1"},
		{Name: "net/ipv4/vs/expire_nodest_conn", Old: "0", New: "1"},
		{Name: "net/ipv4/vs/expire_quiescent_template", Old: "0", New: "1"},
		{Name: "net/ipv4/conf/all/arp_ignore", Old: "0", New: "1"},
	}
	if diff := cmp.Diff(want, r.SysctlChanges()); diff != "" {
		t.Errorf("sysctl changes (-want +got):\n%s", diff)
	}
	if got := f.link.Dump(); got != "kube-ipvs0 dummy up\n" {
		t.Errorf("links: %q", got)
	}
}

func TestConnReuseModeOnlyOnOldKernels(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    string
	}{{"5.4.0-100-generic", "0"}, {"4.0.9", "1"}, {"5.9.0", "1"}, {"6.12.1", "1"}} {
		f := newFakes()
		if err := f.sysctl.Set("kernel/osrelease", tc.release); err != nil {
			t.Fatal(err)
		}
		if err := f.reconciler().Start(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.sysctl.Get("net/ipv4/vs/conn_reuse_mode"); got != tc.want {
			t.Errorf("kernel %s: conn_reuse_mode %s, want %s", tc.release, got, tc.want)
		}
	}
}

func TestApplySequence(t *testing.T) {
	f, r := startSynced(t)
	c := ctx(t)
	steps := []struct {
		name    string
		resync  []svc
		changes []svc
		ops     []string
	}{
		{
			name:   "first sync",
			resync: []svc{web},
			ops: []string{
				"add-vs TCP:10.96.0.10:80 rr",
				"add-rs TCP:10.96.0.10:80 10.244.0.3:8080 weight 1",
				"add-rs TCP:10.96.0.10:80 10.244.1.5:8080 weight 1",
				"add-addr kube-ipvs0 10.96.0.10",
				"add KUBE-CLUSTER-IP 10.96.0.10,tcp:80",
				"add KUBE-IPVS-IPS 10.96.0.10",
				"add KUBE-LOOP-BACK 10.244.0.3,tcp:8080,10.244.0.3",
			},
		},
		{
			name:    "one endpoint added",
			changes: []svc{web3},
			ops:     []string{"add-rs TCP:10.96.0.10:80 10.244.2.7:8080 weight 1"},
		},
		{
			name:    "a second Service with UDP and TCP",
			changes: []svc{dns},
			ops: []string{
				"add-vs TCP:10.96.0.53:53 rr",
				"add-rs TCP:10.96.0.53:53 10.244.3.1:8053 weight 1",
				"add-rs TCP:10.96.0.53:53 10.244.3.2:8053 weight 1",
				"add-vs UDP:10.96.0.53:53 rr",
				"add-rs UDP:10.96.0.53:53 10.244.3.1:8053 weight 1",
				"add-rs UDP:10.96.0.53:53 10.244.3.2:8053 weight 1",
				"add-addr kube-ipvs0 10.96.0.53",
				"add KUBE-CLUSTER-IP 10.96.0.53,tcp:53 10.96.0.53,udp:53",
				"add KUBE-IPVS-IPS 10.96.0.53",
				"delete unserved UDP 10.96.0.53:53 keep [10.244.3.1:8053 10.244.3.2:8053] = 0",
			},
		},
		{
			name:    "one endpoint removed: TCP drains, UDP goes at once with its flows",
			changes: []svc{dns1},
			ops: []string{
				"update-rs TCP:10.96.0.53:53 10.244.3.1:8053 weight 0",
				"delete-rs UDP:10.96.0.53:53 10.244.3.1:8053",
				"delete reply-src UDP 10.244.3.1:8053 via 10.96.0.53:53 = 0",
			},
		},
		{
			name:    "the drained endpoint comes back",
			changes: []svc{dns},
			ops: []string{
				"update-rs TCP:10.96.0.53:53 10.244.3.1:8053 weight 1",
				"add-rs UDP:10.96.0.53:53 10.244.3.1:8053 weight 1",
			},
		},
		{
			name:    "affinity and scheduler changed",
			changes: []svc{{name: web3.name, ip: web3.ip, ports: web3.ports, eps: web3.eps, affinity: true, sched: "lc"}},
			ops:     []string{"update-vs TCP:10.96.0.10:80 lc persistent 10800s"},
		},
		{
			name:    "a Service deleted",
			changes: []svc{goneWeb},
			ops: []string{
				"delete-vs TCP:10.96.0.10:80",
				"delete-addr kube-ipvs0 10.96.0.10",
				"del KUBE-CLUSTER-IP 10.96.0.10,tcp:80",
				"del KUBE-IPVS-IPS 10.96.0.10",
				"del KUBE-LOOP-BACK 10.244.0.3,tcp:8080,10.244.0.3",
			},
		},
		{
			name:   "resync with nothing changed",
			resync: []svc{dns},
			ops:    nil,
		},
	}
	for _, st := range steps {
		var err error
		if st.changes != nil {
			err = r.Apply(c, changes(t, st.changes...))
			f.checkNoReads(t, st.name)
		} else {
			err = r.Resync(c, all(t, st.resync...))
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		f.checkOps(t, st.name, st.ops)
	}
	fixture.Golden(t, "apply-sequence", f.dump())
}

func TestRestartAdoptsWithoutOps(t *testing.T) {
	f, r := startSynced(t, web3, dns)
	// A drained real server and traffic on it survive the restart too.
	if err := r.Apply(ctx(t), changes(t, dns1)); err != nil {
		t.Fatal(err)
	}
	if err := f.ipvs.SetConns(mustKey("TCP:10.96.0.53:53"), mustAP("10.244.3.1:8053"), 3, 1); err != nil {
		t.Fatal(err)
	}
	before := f.dump()
	f.reset()
	r2 := f.reconciler()
	if err := r2.Start(ctx(t)); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := r2.Resync(ctx(t), all(t, web3, dns1)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	f.checkOps(t, "restart", nil)
	if diff := cmp.Diff(before, f.dump()); diff != "" {
		t.Errorf("kernel changed on restart (-before +after):\n%s", diff)
	}
	if r2.Draining() != 1 {
		t.Errorf("the adopted weight-0 real server should be draining, got %d", r2.Draining())
	}
}

func TestDrain(t *testing.T) {
	f, r := startSynced(t, web3)
	c := ctx(t)
	if err := r.Apply(c, changes(t, web)); err != nil {
		t.Fatal(err)
	}
	f.checkOps(t, "remove", []string{"update-rs TCP:10.96.0.10:80 10.244.2.7:8080 weight 0"})
	k, ap := mustKey("TCP:10.96.0.10:80"), mustAP("10.244.2.7:8080")
	if err := f.ipvs.SetConns(k, ap, 1, 0); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(30 * time.Second)
	if err := r.FinishDrains(c); err != nil {
		t.Fatal(err)
	}
	f.checkOps(t, "connections open, time left", nil)
	if err := f.ipvs.SetConns(k, ap, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.FinishDrains(c); err != nil {
		t.Fatal(err)
	}
	f.checkOps(t, "connections gone", []string{"delete-rs TCP:10.96.0.10:80 10.244.2.7:8080"})
	if r.Draining() != 0 {
		t.Errorf("draining %d, want 0", r.Draining())
	}

	// Bounded: a real server whose connections never end goes when the drain time is over.
	if err := r.Apply(c, changes(t, svc{name: web.name, ip: web.ip, ports: web.ports, eps: []string{"10.244.1.5"}})); err != nil {
		t.Fatal(err)
	}
	f.checkOps(t, "remove local endpoint", []string{
		"update-rs TCP:10.96.0.10:80 10.244.0.3:8080 weight 0",
		"del KUBE-LOOP-BACK 10.244.0.3,tcp:8080,10.244.0.3",
	})
	if err := f.ipvs.SetConns(k, mustAP("10.244.0.3:8080"), 5, 5); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	if err := r.FinishDrains(c); err != nil {
		t.Fatal(err)
	}
	f.checkOps(t, "drain time over", []string{"delete-rs TCP:10.96.0.10:80 10.244.0.3:8080"})
}

func TestSharedVIPAndEntriesAreRefcounted(t *testing.T) {
	a := svc{name: "default/a", ip: "10.96.0.20", ports: []string{"TCP:80"}, eps: []string{"10.244.0.3@local"}}
	b := svc{name: "default/b", ip: "10.96.0.20", ports: []string{"TCP:443"}, eps: []string{"10.244.0.3@local"}}
	// c shares a's local endpoint and target port, so the same KUBE-LOOP-BACK member.
	cc := svc{name: "default/c", ip: "10.96.0.21", ports: []string{"TCP:80"}, eps: []string{"10.244.0.3@local"}}
	f, r := startSynced(t, a, b, cc)
	c := ctx(t)
	must(t, r.Apply(c, changes(t, svc{name: "default/c"})))
	f.checkOps(t, "delete c", []string{
		"delete-vs TCP:10.96.0.21:80",
		"delete-addr kube-ipvs0 10.96.0.21",
		"del KUBE-CLUSTER-IP 10.96.0.21,tcp:80",
		"del KUBE-IPVS-IPS 10.96.0.21",
	})
	if err := r.Apply(c, changes(t, svc{name: "default/a"})); err != nil {
		t.Fatal(err)
	}
	f.checkOps(t, "delete a", []string{
		"delete-vs TCP:10.96.0.20:80",
		"del KUBE-CLUSTER-IP 10.96.0.20,tcp:80",
		"del KUBE-LOOP-BACK 10.244.0.3,tcp:8080,10.244.0.3",
	})
	if err := r.Apply(c, changes(t, svc{name: "default/b"})); err != nil {
		t.Fatal(err)
	}
	f.checkOps(t, "delete b", []string{
		"delete-vs TCP:10.96.0.20:443",
		"delete-addr kube-ipvs0 10.96.0.20",
		"del KUBE-CLUSTER-IP 10.96.0.20,tcp:443",
		"del KUBE-IPVS-IPS 10.96.0.20",
		"del KUBE-LOOP-BACK 10.244.0.3,tcp:8443,10.244.0.3",
	})
}

func TestClusterIPMovesBetweenServicesInOneApply(t *testing.T) {
	old := svc{name: "default/old", ip: "10.96.0.30", ports: []string{"TCP:80"}, eps: []string{"10.244.1.1"}}
	f, r := startSynced(t, old)
	nu := svc{name: "default/new", ip: "10.96.0.30", ports: []string{"TCP:80"}, eps: []string{"10.244.1.2"}}
	if err := r.Apply(ctx(t), changes(t, svc{name: "default/old"}, nu)); err != nil {
		t.Fatal(err)
	}
	f.checkOps(t, "move", []string{
		"add-rs TCP:10.96.0.30:80 10.244.1.2:8080 weight 1",
		"update-rs TCP:10.96.0.30:80 10.244.1.1:8080 weight 0",
	})
}

func TestErrorsMidApplyConvergeAfterResync(t *testing.T) {
	f, r := startSynced(t, web)
	c := ctx(t)
	injected := errors.New("injected")
	f.ipvs.FailNext(ipvstest.OpAddRealServer, injected)
	f.ipvs.FailNext(ipvstest.OpAddVirtualServer, injected)
	f.link.FailNext(linktest.OpAddAddress, injected)
	f.ipset.FailNext(ipsettest.OpAdd, injected)
	err := r.Apply(c, changes(t, web3, dns))
	if err == nil {
		t.Fatal("apply: want an error")
	}
	for _, want := range []string{
		"set real server 10.244.2.7:8080 of TCP:10.96.0.10:80 (service default/web): injected",
		"add virtual server TCP:10.96.0.53:53 rr of service kube-system/dns: injected",
		"bind 10.96.0.53 to kube-ipvs0: injected",
		"add 2 members of set KUBE-CLUSTER-IP (first 10.96.0.53,tcp:53): injected",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// The other objects went through despite the failures.
	if !strings.Contains(f.ipvs.Dump(), "UDP:10.96.0.53:53") {
		t.Errorf("UDP virtual server missing after partial failure:\n%s", f.ipvs.Dump())
	}
	if err := r.Resync(c, all(t, web3, dns)); err != nil {
		t.Fatalf("resync: %v", err)
	}
	clean, cr := startSynced(t, web3, dns)
	_ = cr
	if diff := cmp.Diff(clean.dump(), f.dump()); diff != "" {
		t.Errorf("after resync the kernel differs from a clean run (-clean +got):\n%s", diff)
	}
	// And a retry of the same Apply without Resync converges too.
	f2, r2 := startSynced(t, web)
	f2.ipvs.FailNext(ipvstest.OpAddRealServer, injected)
	if err := r2.Apply(c, changes(t, web3, dns)); err == nil {
		t.Fatal("want an error")
	}
	if err := r2.Apply(c, changes(t, web3, dns)); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if diff := cmp.Diff(clean.dump(), f2.dump()); diff != "" {
		t.Errorf("after a retried Apply the kernel differs from a clean run (-clean +got):\n%s", diff)
	}
}

func TestResyncRemovesStaleOwnedState(t *testing.T) {
	f, r := startSynced(t, web)
	c := ctx(t)
	// Left over by an earlier run: a virtual server on a bound VIP, a set member, and a
	// real server added by hand.
	must(t, f.link.AddAddress("kube-ipvs0", mustAddr("10.96.0.99")))
	must(t, f.ipvs.AddVirtualServer(mustVS("TCP:10.96.0.99:80")))
	must(t, f.ipset.AddEntries("KUBE-CLUSTER-IP", "10.96.0.98,tcp:80"))
	must(t, f.ipvs.AddRealServer(mustKey("TCP:10.96.0.10:80"), rsAt("10.244.9.9:8080", 1)))
	// A virtual server kubevs does not own: address not on the dummy link.
	must(t, f.ipvs.AddVirtualServer(mustVS("TCP:192.0.2.1:80")))
	f.reset()
	// Apply of an unrelated change does not look at them.
	if err := r.Apply(c, changes(t, dns)); err != nil {
		t.Fatal(err)
	}
	if got := f.ipvs.Calls(ipvstest.OpVirtualServers); got != 0 {
		t.Errorf("apply listed the virtual servers %d times", got)
	}
	f.reset()
	if err := r.Resync(c, all(t, web, dns)); err != nil {
		t.Fatal(err)
	}
	f.checkOps(t, "resync", []string{
		"update-rs TCP:10.96.0.10:80 10.244.9.9:8080 weight 0",
		"delete-vs TCP:10.96.0.99:80",
		"delete-rs TCP:10.96.0.10:80 10.244.9.9:8080", // no connections: drained at once
		"delete-addr kube-ipvs0 10.96.0.99",
		"del KUBE-CLUSTER-IP 10.96.0.98,tcp:80",
	})
	if !strings.Contains(f.ipvs.Dump(), "TCP:192.0.2.1:80") {
		t.Errorf("foreign virtual server removed")
	}
}

func TestCleanupRemovesOnlyWhatKubevsOwns(t *testing.T) {
	f := newFakes()
	c := ctx(t)
	// With a cluster CIDR: the owned chains jump to each other (KUBE-SERVICES to
	// KUBE-CLUSTER-IP to KUBE-MARK-MASQ), and all of them go.
	r := New(f.kernel(), Options{Desired: testOpts})
	must(t, r.Start(c))
	must(t, r.Resync(c, all(t, web, dns)))
	must(t, f.nf.Append(ipset.IPv4, "filter", "INPUT", "-p tcp --dport 22 -j ACCEPT"))
	must(t, f.nf.Append(ipset.IPv4, "nat", "OTHER-CHAIN", "-j RETURN"))
	must(t, f.ipvs.AddVirtualServer(mustVS("TCP:192.0.2.1:80")))     // not on the dummy link
	must(t, f.link.AddAddress("kube-ipvs0", mustAddr("10.100.0.1"))) // bound, but excluded
	must(t, f.ipvs.AddVirtualServer(mustVS("TCP:10.100.0.1:80")))
	must(t, f.ipset.CreateSet(setNamed("OTHER-SET")))
	f.link.AddForeignLink("eth0")
	f.reset()
	if err := Cleanup(c, f.kernel(), mustPrefixes("10.100.0.0/16")); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	fixture.Golden(t, "cleanup", f.dump())
	if err := Cleanup(c, f.kernel(), mustPrefixes("10.100.0.0/16")); err != nil {
		t.Fatalf("second cleanup: %v", err)
	}
}

func TestResyncRepairsWhatOthersRemoved(t *testing.T) {
	f, r := startSynced(t, web, dns)
	c := ctx(t)
	// A first periodic resync with nothing to do.
	must(t, r.Resync(c, all(t, web, dns)))
	f.checkOps(t, "idle resync", nil)
	want := f.dump()
	// Someone runs ipvsadm -D, ip addr del, ipset flush; and an ipset destroy that the
	// kernel refuses while a rule uses the set.
	must(t, f.ipvs.DeleteVirtualServer(mustKey("UDP:10.96.0.53:53")))
	must(t, f.link.DeleteAddress("kube-ipvs0", mustAddr("10.96.0.10")))
	must(t, f.ipset.DeleteEntries("KUBE-LOOP-BACK", "10.244.0.3,tcp:8080,10.244.0.3"))
	if err := f.ipset.DestroySet("KUBE-LOOP-BACK"); !errors.Is(err, ipset.ErrInUse) {
		t.Fatalf("destroy a set in use: %v", err)
	}
	f.reset()
	must(t, r.Resync(c, all(t, web, dns)))
	f.checkOps(t, "repair", []string{
		"add-vs UDP:10.96.0.53:53 rr",
		"add-rs UDP:10.96.0.53:53 10.244.3.1:8053 weight 1",
		"add-rs UDP:10.96.0.53:53 10.244.3.2:8053 weight 1",
		"add-addr kube-ipvs0 10.96.0.10",
		"add KUBE-LOOP-BACK 10.244.0.3,tcp:8080,10.244.0.3",
		"delete unserved UDP 10.96.0.53:53 keep [10.244.3.1:8053 10.244.3.2:8053] = 0",
	})
	if diff := cmp.Diff(want, f.dump()); diff != "" {
		t.Errorf("not repaired (-want +got):\n%s", diff)
	}
}

func TestDualStack(t *testing.T) {
	f := newFakes()
	opts := testOpts
	opts.Families = []ipset.Family{ipset.IPv4, ipset.IPv6}
	sysctls := fixture.Sysctls()
	sysctls["kernel/osrelease"] = "6.1.0"
	sysctls["net/ipv6/conf/all/forwarding"] = "0"
	f.sysctl = sysctltest.NewFake(sysctls)
	r := New(f.kernel(), Options{Desired: opts, Now: func() time.Time { return f.now }})
	c := ctx(t)
	must(t, r.Start(c))
	if d := r.Degraded(); len(d) != 0 {
		t.Errorf("Degraded() = %v on a kernel with IPv6 forwarding", d)
	}
	v6 := svc{name: "default/v6", ip: "fd00:96::10", ports: []string{"TCP:80"}, eps: []string{"fd00:244::5@local", "fd00:244::6"}, opts: &opts}
	d := v6.compute(t)
	must(t, r.Resync(c, map[types.NamespacedName]desired.Service{nn(v6.name): d}))
	fixture.Golden(t, "dual-stack", f.dump())
	if got, want := r.Stats(), (Stats{VirtualServers: 1, RealServers: 2, Addresses: 1, SetMembers: 3}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestErrorsMidResyncConvergeOnTheNextResync(t *testing.T) {
	f, r := startSynced(t, web3, dns)
	c := ctx(t)
	injected := errors.New("injected")
	f.ipvs.FailNext(ipvstest.OpDeleteVirtualServer, injected)
	f.ipvs.FailNext(ipvstest.OpUpdateRealServer, injected)
	f.link.FailNext(linktest.OpDeleteAddress, injected)
	f.ipset.FailNext(ipsettest.OpDel, injected)
	next := svc{name: dns.name, ip: dns.ip, ports: dns.ports, eps: []string{"10.244.3.2", "10.244.3.3"}}
	if err := r.Resync(c, all(t, next)); err == nil {
		t.Fatal("resync: want an error")
	}
	must(t, r.Resync(c, all(t, next)))
	clean, _ := startSynced(t, next)
	// The drained TCP real server had no connections, so both runs deleted it.
	if diff := cmp.Diff(clean.dump(), f.dump()); diff != "" {
		t.Errorf("after a second resync the kernel differs from a clean run (-clean +got):\n%s", diff)
	}
}

func TestApplyOfNothing(t *testing.T) {
	f, r := startSynced(t, web)
	must(t, r.Apply(ctx(t), changes(t, svc{name: "default/unknown"})))
	must(t, r.Apply(ctx(t), changes(t, web)))
	f.checkOps(t, "no-op applies", nil)
	if err := newFakes().reconciler().Apply(ctx(t), nil); err == nil {
		t.Error("apply before start: want an error")
	}
}

func TestStaleUDPFlowsAreDeleted(t *testing.T) {
	f, r := startSynced(t, dns)
	c := ctx(t)
	client := mustAP("10.244.7.7:40000")
	vip := mustAP("10.96.0.53:53")
	f.ct.Add(
		conntracktest.NATFlow(ipvs.UDP, client, vip, mustAP("10.244.3.1:8053")),
		conntracktest.NATFlow(ipvs.UDP, mustAP("10.244.7.8:40000"), vip, mustAP("10.244.3.2:8053")),
		conntracktest.NATFlow(ipvs.TCP, client, vip, mustAP("10.244.3.1:8053")),
	)
	must(t, r.Apply(c, changes(t, dns1)))
	f.checkOps(t, "endpoint gone", []string{
		"update-rs TCP:10.96.0.53:53 10.244.3.1:8053 weight 0",
		"delete-rs UDP:10.96.0.53:53 10.244.3.1:8053",
		"delete reply-src UDP 10.244.3.1:8053 via 10.96.0.53:53 = 1",
	})
	must(t, r.Apply(c, changes(t, svc{name: dns.name})))
	f.checkOps(t, "service gone", []string{
		"delete-vs TCP:10.96.0.53:53",
		"delete-vs UDP:10.96.0.53:53",
		"delete-addr kube-ipvs0 10.96.0.53",
		"del KUBE-CLUSTER-IP 10.96.0.53,tcp:53 10.96.0.53,udp:53",
		"del KUBE-IPVS-IPS 10.96.0.53",
		"delete orig-dst UDP 10.96.0.53:53 = 1",
	})
	// TCP flows are left to IPVS (expire_nodest_conn), never deleted by kubevs.
	if got := len(f.ct.Flows()); got != 1 {
		t.Errorf("flows left: %d, want the TCP one\n%s", got, f.ct.Dump())
	}
}

func TestRestoreSysctls(t *testing.T) {
	f := newFakes()
	must(t, f.sysctl.Set("net/ipv4/ip_forward", "0"))
	r := f.reconciler()
	must(t, r.Start(ctx(t)))
	changed := r.SysctlChanges()
	// An operator tunes expire_nodest_conn again after kubevs set it: leave it.
	must(t, f.sysctl.Set("net/ipv4/vs/expire_nodest_conn", "0"))
	f.reset()
	must(t, RestoreSysctls(f.sysctl, changed))
	f.checkOps(t, "restore", []string{
		"set net/ipv4/vs/conntrack 0",
		"set net/ipv4/vs/expire_quiescent_template 0",
		"set net/ipv4/conf/all/arp_ignore 0",
	})
	if got, _ := f.sysctl.Get("net/ipv4/ip_forward"); got != "1" {
		t.Errorf("ip_forward %s, want it kept at 1", got)
	}
}

func TestSetOptionsRewritesRulesOnlyWhenTheyChange(t *testing.T) {
	f, r := startSynced(t, web)
	c := ctx(t)
	must(t, r.SetOptions(c, testOpts))
	f.checkOps(t, "same options", nil)
	o := testOpts
	o.MasqueradeAll = true
	must(t, r.SetOptions(c, o))
	f.checkOps(t, "masquerade-all", []string{"restore inet nat"})
	if !strings.Contains(f.nf.Save(), "-A KUBE-CLUSTER-IP -j KUBE-MARK-MASQ") || strings.Contains(f.nf.Save(), "-s 10.244.0.0/16 -j RETURN") {
		t.Errorf("rules after masquerade-all:\n%s", f.nf.Save())
	}
}

// TestSetOptionsLeavesDriftToTheResync: options that keep the fixed state (NodePort
// addresses) write no rule, even over rules someone flushed meanwhile; the Resync after
// them repairs the flush and counts it as drift (the soak of 7 Dec found a flush repaired
// by such a rewrite and counted nowhere).
func TestSetOptionsLeavesDriftToTheResync(t *testing.T) {
	f, r := startSynced(t, web)
	c := ctx(t)
	must(t, f.nf.Flush(ipset.IPv4, "nat", "KUBE-SERVICES"))
	o := testOpts
	o.NodePortAddresses = []netip.Addr{netip.MustParseAddr("192.168.1.10")}
	must(t, r.SetOptions(c, o))
	if n := f.nf.Calls(netfiltertest.OpEnsure); n != 0 {
		t.Errorf("SetOptions with the same fixed state: %d rule writes, want 0", n)
	}
	f.reset()
	must(t, r.Resync(c, all(t, web)))
	f.checkOps(t, "resync", []string{"restore inet nat"})
	if got := r.Drift().Rules; got != 1 {
		t.Errorf("Drift.Rules = %d, want 1", got)
	}
}
