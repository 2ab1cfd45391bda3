package reconcile

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	v1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/internal/testenv"
)

// Clients outside the node, over the Linux adapters in the test VM: the test's netns is the
// node (its address on a dummy "eth0"), a "pod" netns behind a veth holds the endpoint and
// reports the source address it sees, a "client" netns behind another veth holds two
// client addresses. externalTrafficPolicy=Cluster masquerades NodePort traffic (the pod
// sees the node), Local keeps the client's address (NodePort, externalIP); a LoadBalancer with source ranges lets
// the allowed client in and drops the other.
func TestRealKernelOutsideClients(t *testing.T) {
	realKernel(t, func(k Kernel) {
		pod, client := testenv.NewNetns(t), testenv.NewNetns(t)
		eth0 := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}}
		must(t, netlink.LinkAdd(eth0))
		must(t, netlink.AddrAdd(eth0, &netlink.Addr{IPNet: netlink.NewIPNet(net.ParseIP(nodeIP.String()))}))
		must(t, netlink.LinkSetUp(eth0))
		wire(t, "pod0", pod, []string{"10.244.0.1/24"}, []string{"10.244.0.3/24"}, "10.244.0.1")
		wire(t, "cli0", client, []string{"192.0.2.1/24", "203.0.113.1/24"}, []string{"192.0.2.2/24", "203.0.113.5/24"}, "192.0.2.1")
		seen := make(chan netip.Addr, 16)
		must(t, pod.Do(func(ns.NetNS) error {
			ln, err := net.Listen("tcp", "10.244.0.3:8080")
			if err != nil {
				return err
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					seen <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
					c.Close()
				}
			}()
			return nil
		}))
		from := func(src, dst string) (netip.Addr, error) {
			var err error
			must(t, client.Do(func(ns.NetNS) error {
				d := net.Dialer{Timeout: 500 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
				var c net.Conn
				if c, err = d.Dial("tcp", dst); err == nil {
					c.Close()
				}
				return nil
			}))
			if err != nil {
				return netip.Addr{}, err
			}
			select {
			case a := <-seen:
				return a, nil
			case <-time.After(5 * time.Second):
				t.Fatalf("%s -> %s: connected, but the pod saw no connection", src, dst)
			}
			return netip.Addr{}, nil
		}

		c := ctx(t)
		r := New(k, Options{Desired: testOpts})
		must(t, r.Start(c))
		s := svc{name: "ns/lb", ip: "10.96.0.30", ports: []string{"TCP:80"}, eps: []string{"10.244.0.3@local"},
			typ: v1.ServiceTypeLoadBalancer, ingress: []string{"198.51.100.1"}, ranges: []string{"203.0.113.0/24"}}
		must(t, r.Resync(c, all(t, s)))
		if got, err := from("203.0.113.5", "192.168.1.10:30080"); err != nil || got != netip.MustParseAddr("10.244.0.1") {
			t.Errorf("NodePort, externalTrafficPolicy=Cluster: the pod saw %v (err %v), want the node's 10.244.0.1 (masqueraded)", got, err)
		}
		s.extLocal = true
		s.extIPs = []string{"198.51.100.7"}
		must(t, r.Apply(c, changes(t, s)))
		if got, err := from("192.0.2.2", "198.51.100.7:80"); err != nil || got != netip.MustParseAddr("192.0.2.2") {
			t.Errorf("externalIP, externalTrafficPolicy=Local: the pod saw %v (err %v), want the client 192.0.2.2", got, err)
		}
		if got, err := from("203.0.113.5", "192.168.1.10:30080"); err != nil || got != netip.MustParseAddr("203.0.113.5") {
			t.Errorf("NodePort, externalTrafficPolicy=Local: the pod saw %v (err %v), want the client 203.0.113.5", got, err)
		}
		if got, err := from("203.0.113.5", "198.51.100.1:80"); err != nil || got != netip.MustParseAddr("203.0.113.5") {
			t.Errorf("LoadBalancer from an allowed source: the pod saw %v (err %v), want the client 203.0.113.5", got, err)
		}
		if _, err := from("192.0.2.2", "198.51.100.1:80"); !isTimeout(err) {
			t.Errorf("LoadBalancer from a source outside the ranges: %v, want dropped (timeout)", err)
		}
		must(t, Cleanup(c, k, nil))
	})
}

// wire connects the current netns to other with a veth pair: name here holding local,
// its peer "eth0" there holding remote, with a default route there via gw.
func wire(t *testing.T, name string, other ns.NetNS, local, remote []string, gw string) {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	must(t, netlink.LinkAdd(v))
	for _, a := range local {
		addr, err := netlink.ParseAddr(a)
		must(t, err)
		must(t, netlink.AddrAdd(v, addr))
	}
	must(t, netlink.LinkSetUp(v))
	peer, err := netlink.LinkByName(name + "p")
	must(t, err)
	must(t, netlink.LinkSetNsFd(peer, int(other.Fd())))
	must(t, other.Do(func(ns.NetNS) error {
		p, err := netlink.LinkByName(name + "p")
		if err != nil {
			return err
		}
		for _, a := range remote {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				return err
			}
			if err := netlink.AddrAdd(p, addr); err != nil {
				return err
			}
		}
		if err := netlink.LinkSetUp(p); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)})
	}))
}
