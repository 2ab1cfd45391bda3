package reconcile

import (
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/conntrack"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/proxier/sysctl"
)

// realKernel runs fn over the Linux adapters in a fresh network namespace of the test VM
// (IPVS, links, sets, rules and the net sysctls are all per namespace).
func realKernel(t *testing.T, fn func(Kernel)) {
	t.Helper()
	testenv.RequireVM(t)
	testenv.InNetns(t, func() {
		v, err := ipvs.New()
		if err != nil {
			t.Fatalf("ipvs: %v", err)
		}
		defer v.(io.Closer).Close()
		l, err := link.New()
		if err != nil {
			t.Fatalf("link: %v", err)
		}
		defer l.(io.Closer).Close()
		nf, err := netfilter.New()
		if err != nil {
			t.Fatalf("netfilter: %v", err)
		}
		fn(Kernel{IPVS: v, Link: l, IPSet: ipset.New(), Netfilter: nf, Conntrack: conntrack.New(), Sysctl: sysctl.New()})
	})
}

// kernelText prints the IPVS table, the dummy link's addresses and the owned sets.
func kernelText(t *testing.T, k Kernel) string {
	t.Helper()
	var b strings.Builder
	text, err := ipvstest.Text(k.IPVS)
	must(t, err)
	b.WriteString(text)
	addrs, err := k.Link.Addresses(link.DefaultDummy)
	if err == nil {
		slices.SortFunc(addrs, netip.Addr.Compare)
		for _, a := range addrs {
			b.WriteString("addr " + a.String() + "\n")
		}
	}
	names, err := k.IPSet.Sets()
	must(t, err)
	slices.Sort(names)
	for _, n := range names {
		es, err := k.IPSet.Entries(n)
		must(t, err)
		slices.Sort(es)
		b.WriteString("set " + n + "\n")
		for _, e := range es {
			b.WriteString("  " + string(e) + "\n")
		}
	}
	return b.String()
}

func TestRealKernelSyncRestartCleanup(t *testing.T) {
	realKernel(t, func(k Kernel) {
		c := ctx(t)
		opts := Options{Desired: testOpts}
		r := New(k, opts)
		must(t, r.Start(c))
		must(t, r.Resync(c, all(t, web, dns)))
		must(t, r.Apply(c, changes(t, web3)))
		// A virtual server kubevs does not own.
		foreign := ipvs.VirtualServer{Key: mustKey("TCP:192.0.2.1:80"), Scheduler: "rr"}
		must(t, k.IPVS.AddVirtualServer(foreign))
		want := `TCP:10.96.0.10:80 rr
  -> 10.244.0.3:8080 weight 1
  -> 10.244.1.5:8080 weight 1
  -> 10.244.2.7:8080 weight 1
TCP:10.96.0.53:53 rr
  -> 10.244.3.1:8053 weight 1
  -> 10.244.3.2:8053 weight 1
UDP:10.96.0.53:53 rr
  -> 10.244.3.1:8053 weight 1
  -> 10.244.3.2:8053 weight 1
TCP:192.0.2.1:80 rr
addr 10.96.0.10
addr 10.96.0.53
set KUBE-CLUSTER-IP
  10.96.0.10,tcp:80
  10.96.0.53,tcp:53
  10.96.0.53,udp:53
set KUBE-EXTERNAL-IP
set KUBE-EXTERNAL-IP-LOCAL
set KUBE-HEALTH-CHECK-NODE-PORT
set KUBE-IPVS-IPS
  10.96.0.10
  10.96.0.53
set KUBE-LOAD-BALANCER
set KUBE-LOAD-BALANCER-FW
set KUBE-LOAD-BALANCER-LOCAL
set KUBE-LOAD-BALANCER-SOURCE-CIDR
set KUBE-LOAD-BALANCER-SOURCE-IP
set KUBE-LOOP-BACK
  10.244.0.3,tcp:8080,10.244.0.3
set KUBE-NODE-PORT-LOCAL-SCTP-HASH
set KUBE-NODE-PORT-LOCAL-TCP
set KUBE-NODE-PORT-LOCAL-UDP
set KUBE-NODE-PORT-SCTP-HASH
set KUBE-NODE-PORT-TCP
set KUBE-NODE-PORT-UDP
`
		if diff := cmp.Diff(want, kernelText(t, k)); diff != "" {
			t.Errorf("kernel after sync (-want +got):\n%s", diff)
		}

		// A restarted proxier adopts everything and writes nothing to IPVS.
		counting := ipvstest.NewRecorder(k.IPVS)
		k2 := k
		k2.IPVS = counting
		r2 := New(k2, opts)
		must(t, r2.Start(c))
		must(t, r2.Resync(c, all(t, web3, dns)))
		if len(counting.Ops()) != 0 {
			t.Errorf("restart wrote to IPVS: %q", counting.Ops())
		}
		if diff := cmp.Diff(want, kernelText(t, k)); diff != "" {
			t.Errorf("kernel after restart (-want +got):\n%s", diff)
		}
		rules, err := k.Netfilter.Dump(ipset.IPv4)
		must(t, err)
		if len(rules.Chains) == 0 || len(rules.Jumps) == 0 {
			t.Errorf("no rules in the kernel: %+v", rules)
		}

		must(t, Cleanup(c, k, nil))
		if diff := cmp.Diff("TCP:192.0.2.1:80 rr\n", kernelText(t, k)); diff != "" {
			t.Errorf("kernel after cleanup (-want +got):\n%s", diff)
		}
		rules, err = k.Netfilter.Dump(ipset.IPv4)
		must(t, err)
		if len(rules.Chains) != 0 || len(rules.Jumps) != 0 {
			t.Errorf("rules left after cleanup: %+v", rules)
		}
	})
}
