package reconcile

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	v1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// The LoadBalancer firewall on the host's kernel, for the node's own connections
// (k/k#119656): in a fresh netns whose loopback holds the LoadBalancer IP (as kube-ipvs0
// would; IPVS itself is a fake, so a local listener stands for the Service), a connection
// from the node to the LoadBalancer port is dropped when no source range holds a node
// address and gets through when one does; a port of the address that no Service has is
// rejected (k/k#72236).
func TestLoadBalancerFirewallOnTheHostKernel(t *testing.T) {
	lbIP := "198.51.100.1"
	denied := svc{name: "ns/lb", ip: "10.96.0.30", ports: []string{"TCP:80"}, eps: []string{"10.244.1.5"},
		typ: v1.ServiceTypeLoadBalancer, ingress: []string{lbIP}, ranges: []string{"203.0.113.0/24"}}
	allowed := denied
	allowed.ranges = []string{"203.0.113.0/24", "192.168.1.0/24"} // holds the node address
	testenv.InNetns(t, func() {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: netlink.NewIPNet(net.ParseIP(lbIP))}); err != nil {
			t.Fatalf("add %s to lo: %v", lbIP, err)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(lbIP, "80"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		other, err := net.Listen("tcp", net.JoinHostPort(lbIP, "81"))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		go acceptAll(ln)
		go acceptAll(other)
		_, k := hostKernel(t)
		r := New(k, Options{Desired: testOpts})
		c := ctx(t)
		must(t, r.Start(c))
		addr := netip.MustParseAddrPort(lbIP + ":80")
		// Before any Service: nothing filters.
		if err := dial(addr); err != nil {
			t.Fatalf("connect before any Service: %v", err)
		}
		must(t, r.Resync(c, all(t, denied)))
		if err := dialOnce(addr); !isTimeout(err) {
			t.Errorf("connect from the node, no range holds it: %v, want dropped (timeout)", err)
		}
		if err := dialOnce(netip.MustParseAddrPort(lbIP + ":81")); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect to a port of the LoadBalancer IP no Service has: %v, want refused", err)
		}
		must(t, r.Apply(c, changes(t, allowed)))
		if err := dial(addr); err != nil {
			t.Errorf("connect from the node, a range holds its address: %v", err)
		}
		must(t, r.Apply(c, changes(t, denied)))
		if err := dialOnce(addr); !isTimeout(err) {
			t.Errorf("connect after the range was removed again: %v, want dropped (timeout)", err)
		}
		must(t, Cleanup(c, k, nil))
	})
}

// dialOnce makes one connection attempt to a, with a 500 ms timeout: for connections that
// must be refused or dropped.
func dialOnce(a netip.AddrPort) error { return dialWithin(a, 500*time.Millisecond) }

func dialWithin(a netip.AddrPort, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", a.String(), timeout)
	if err != nil {
		return err
	}
	return conn.Close()
}

// dial connects to a, for connections that must succeed: a timed-out attempt is repeated for
// up to 15 s, as a SYN can take seconds in a loaded TCG guest (one 500 ms attempt failed CI).
// A refusal or another error fails at once.
func dial(a netip.AddrPort) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := dialWithin(a, 2*time.Second)
		if err == nil || !isTimeout(err) || time.Now().After(deadline) {
			return err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// hostKernel returns fakes and a Kernel over them whose sets and rules are the real ones of
// the calling goroutine's network namespace: ipset and iptables need no VM.
func hostKernel(t *testing.T) (*fakes, Kernel) {
	t.Helper()
	nf, err := netfilter.New()
	if err != nil {
		t.Fatalf("netfilter: %v", err)
	}
	f := newFakes()
	k := f.kernel()
	k.IPSet, k.Netfilter = ipset.New(), nf
	return f, k
}
