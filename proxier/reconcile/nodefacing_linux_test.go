package reconcile

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// A NodePort + LoadBalancer Service over the Linux adapters in the test VM: the virtual
// servers on the node address (never bound to kube-ipvs0) and on the LoadBalancer IP (bound),
// the set members, traffic from the node through both to an endpoint, the source-range
// firewall for the node's own connections, then a type change back to ClusterIP and a
// cleanup that leave nothing of it. The node address lives on a dummy "eth0" and the
// endpoint on a dummy "pods" link of the test's netns; IPVS delivers to a local real server
// directly.
func TestRealKernelNodePortAndLoadBalancer(t *testing.T) {
	realKernel(t, func(k Kernel) {
		for name, a := range map[string]string{"eth0": nodeIP.String(), "pods": "10.244.0.3"} {
			l := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}
			must(t, netlink.LinkAdd(l))
			must(t, netlink.AddrAdd(l, &netlink.Addr{IPNet: netlink.NewIPNet(net.ParseIP(a))}))
			must(t, netlink.LinkSetUp(l))
		}
		ln, err := net.Listen("tcp", "10.244.0.3:8080")
		must(t, err)
		defer ln.Close()
		go acceptAll(ln)

		c := ctx(t)
		opts := Options{Desired: testOpts}
		r := New(k, opts)
		must(t, r.Start(c))
		lb := svc{name: "ns/lb", ip: "10.96.0.30", ports: []string{"TCP:80"}, eps: []string{"10.244.0.3@local"},
			typ: v1.ServiceTypeLoadBalancer, ingress: []string{"198.51.100.1"}, ranges: []string{"192.168.1.0/24"}}
		must(t, r.Resync(c, all(t, lb)))
		want := `TCP:10.96.0.30:80 rr
  -> 10.244.0.3:8080 weight 1
TCP:192.168.1.10:30080 rr
  -> 10.244.0.3:8080 weight 1
TCP:198.51.100.1:80 rr
  -> 10.244.0.3:8080 weight 1
addr 10.96.0.30
addr 198.51.100.1
`
		got := kernelText(t, k)
		if diff := cmp.Diff(want, got[:min(len(got), len(want))]); diff != "" {
			t.Errorf("kernel after sync (-want +got):\n%s", diff)
		}
		for _, a := range []string{"10.96.0.30:80", "192.168.1.10:30080", "198.51.100.1:80"} {
			if err := dial(netip.MustParseAddrPort(a)); err != nil {
				t.Errorf("connect to %s from the node: %v", a, err)
			}
		}
		// CVE-2020-8558: no NodePort on localhost.
		if err := dialOnce(netip.MustParseAddrPort("127.0.0.1:30080")); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect to the NodePort on 127.0.0.1: %v, want refused", err)
		}
		// No source range holds the node: its own connections to the LoadBalancer drop.
		denied := lb
		denied.ranges = []string{"203.0.113.0/24"}
		must(t, r.Apply(c, changes(t, denied)))
		if err := dialOnce(netip.MustParseAddrPort("198.51.100.1:80")); !isTimeout(err) {
			t.Errorf("connect to the LoadBalancer, node not in the source ranges: %v, want dropped (timeout)", err)
		}
		if err := dial(netip.MustParseAddrPort("192.168.1.10:30080")); err != nil {
			t.Errorf("connect to the NodePort (no source ranges there): %v", err)
		}
		// Back to ClusterIP: the node-facing virtual servers, the LoadBalancer address and
		// the members go.
		clusterIP := svc{name: lb.name, ip: lb.ip, ports: lb.ports, eps: lb.eps}
		must(t, r.Apply(c, changes(t, clusterIP)))
		clean := newFakes()
		cr := New(clean.kernel(), opts)
		must(t, cr.Start(c))
		must(t, cr.Resync(c, all(t, clusterIP)))
		if diff := cmp.Diff(kernelText(t, clean.kernel()), kernelText(t, k)); diff != "" {
			t.Errorf("kernel after the change back to ClusterIP differs from a clean sync (-clean +got):\n%s", diff)
		}
		must(t, Cleanup(c, k, nil))
		if got := kernelText(t, k); got != "" {
			t.Errorf("kernel after cleanup:\n%s", got)
		}
	})
}

// UDP through a NodePort, and an IPv6 ClusterIP and NodePort, over the Linux adapters in
// the test VM (dual-stack options; endpoints on a dummy "pods" link of the test's netns).
func TestRealKernelNodePortUDPAndIPv6(t *testing.T) {
	realKernel(t, func(k Kernel) {
		node6 := netip.MustParseAddr("fd00:1::10")
		for name, as := range map[string][]string{"eth0": {nodeIP.String(), node6.String()}, "pods": {"10.244.0.3", "fd00:244::3"}} {
			l := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}
			must(t, netlink.LinkAdd(l))
			for _, a := range as {
				must(t, netlink.AddrAdd(l, &netlink.Addr{IPNet: netlink.NewIPNet(net.ParseIP(a)), Flags: unix.IFA_F_NODAD}))
			}
			must(t, netlink.LinkSetUp(l))
		}
		pc, err := net.ListenPacket("udp", "10.244.0.3:8053")
		must(t, err)
		defer pc.Close()
		go echo(pc)
		ln, err := net.Listen("tcp", "[fd00:244::3]:8080")
		must(t, err)
		defer ln.Close()
		go acceptAll(ln)

		opts := testOpts
		opts.Families = []ipset.Family{ipset.IPv4, ipset.IPv6}
		opts.ClusterCIDRs = append(slices.Clone(opts.ClusterCIDRs), netip.MustParsePrefix("fd00:244::/56"))
		opts.NodePortAddresses = []netip.Addr{nodeIP, node6}
		dnsNP := svc{name: "ns/dns", ip: "10.96.0.53", ports: []string{"UDP:53"}, eps: []string{"10.244.0.3@local"}, typ: v1.ServiceTypeNodePort, opts: &opts}
		web6 := svc{name: "ns/web6", ip: "fd00:96::80", ports: []string{"TCP:80"}, eps: []string{"fd00:244::3@local"}, typ: v1.ServiceTypeNodePort, opts: &opts}
		c := ctx(t)
		r := New(k, Options{Desired: opts})
		must(t, r.Start(c))
		must(t, r.Resync(c, all(t, dnsNP, web6)))
		for _, a := range []string{"10.96.0.53:53", "192.168.1.10:30053"} {
			if err := udpRoundTrip(netip.MustParseAddrPort(a)); err != nil {
				t.Errorf("UDP to %s: %v", a, err)
			}
		}
		for _, a := range []string{"[fd00:96::80]:80", "[fd00:1::10]:30080"} {
			if err := dial(netip.MustParseAddrPort(a)); err != nil {
				t.Errorf("connect to %s: %v", a, err)
			}
		}
		must(t, Cleanup(c, k, nil))
		if got := kernelText(t, k); got != "" {
			t.Errorf("kernel after cleanup:\n%s", got)
		}
	})
}

// echo answers every datagram with its own payload.
func echo(pc net.PacketConn) {
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(buf[:n], from)
	}
}

// udpRoundTrip sends one datagram to a and waits (bounded) for the echo.
func udpRoundTrip(a netip.AddrPort) error {
	conn, err := net.Dial("udp", a.String())
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "ping" {
		return fmt.Errorf("echo %q, want %q", buf[:n], "ping")
	}
	return nil
}
