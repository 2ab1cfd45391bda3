//go:build linux

package desired_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// TestLocalnetGuardDropsOutsidePackets checks the CVE-2020-8558 guard with the real
// iptables of the host kernel: the test's netns is the node, with route_localnet=1 and a
// UDP listener on 127.0.0.1 (what a loopback NodePort, or any local-only daemon, looks
// like); a "neighbour" netns behind a veth routes 127.0.0.1 to the node. Before the guard
// the neighbour's datagram arrives (the setup reaches the node: the hole is real); once the
// KUBE-PROXY-FIREWALL chain that Global wants for loopback NodePorts is in the kernel, the
// neighbour's datagram is dropped while the node's own loopback datagram still arrives.
func TestLocalnetGuardDropsOutsidePackets(t *testing.T) {
	for _, b := range []netfilter.Backend{netfilter.BackendNFT, netfilter.BackendLegacy} {
		t.Run(string(b), func(t *testing.T) {
			testenv.EnterNetns(t)
			nf, err := netfilter.NewBackend(b)
			if err != nil {
				testenv.Skip(t, fmt.Sprintf("iptables backend %s: %v", b, err))
			}
			neighbour := testenv.NewNetns(t)
			wireNeighbour(t, neighbour)
			must(t, writeSysctl("net/ipv4/conf/all/route_localnet", "1"))

			ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			must(t, err)
			t.Cleanup(func() { ln.Close() })
			port := ln.LocalAddr().(*net.UDPAddr).Port
			fromNeighbour := func(msg string) {
				t.Helper()
				must(t, neighbour.Do(func(ns.NetNS) error {
					c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
					if err != nil {
						return err
					}
					defer c.Close()
					_, err = c.Write([]byte(msg))
					return err
				}))
			}
			fromLoopback := func(msg string) {
				t.Helper()
				c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
				must(t, err)
				defer c.Close()
				_, err = c.Write([]byte(msg))
				must(t, err)
			}

			// The veth's carrier comes up asynchronously: send until one datagram arrives.
			got := ""
			for deadline := time.Now().Add(5 * time.Second); got == "" && time.Now().Before(deadline); {
				fromNeighbour("before")
				got = receive(ln, 200*time.Millisecond)
			}
			if got != "before" {
				t.Fatalf("without the guard the neighbour's datagram did not arrive (got %q): the test cannot tell a drop from a broken setup", got)
			}
			for receive(ln, 100*time.Millisecond) != "" { // late copies
			}

			must(t, nf.Ensure(ipset.IPv4, proxyFirewallOnly(t, desired.Options{NodePortAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})))
			fromNeighbour("after")
			fromLoopback("loopback")
			if got := receive(ln, time.Second); got != "loopback" {
				t.Errorf("with the guard the listener got %q first, want only the node's own %q (the neighbour's dropped)", got, "loopback")
			}
			if got := receive(ln, 300*time.Millisecond); got != "" {
				t.Errorf("with the guard the listener also got %q, want nothing more", got)
			}
		})
	}
}

// proxyFirewallOnly returns filter KUBE-PROXY-FIREWALL and its jumps from the IPv4 ruleset
// Global wants for opts (the rest of the ruleset matches ipsets this test does not create),
// and fails unless that chain holds the localnet guard.
func proxyFirewallOnly(t *testing.T, opts desired.Options) netfilter.Ruleset {
	t.Helper()
	var out netfilter.Ruleset
	for _, fr := range desired.Global(opts, desired.KernelVersion{Major: 6, Minor: 1}).Rules {
		if fr.Family != ipset.IPv4 {
			continue
		}
		for _, c := range fr.Chains {
			if c.Table == "filter" && c.Name == desired.ChainProxyFirewall {
				out.Chains = append(out.Chains, c)
			}
		}
		for _, j := range fr.Jumps {
			if j.Table == "filter" && j.To == desired.ChainProxyFirewall {
				out.Jumps = append(out.Jumps, j)
			}
		}
	}
	if len(out.Chains) != 1 || !slices.Contains(out.Chains[0].Rules, desired.LocalnetGuardRule) || len(out.Jumps) == 0 {
		t.Fatalf("Global's IPv4 ruleset lacks the hooked guard: %+v", out)
	}
	return out
}

// wireNeighbour links the current netns (the node, 10.99.0.1/24) to n (10.99.0.2/24) with a
// veth pair, and makes n send 127.0.0.1 to the node: its "lookup local" policy rule moves
// behind one that routes 127.0.0.1 through the veth (a neighbour on the node's L2 segment
// can address any frame to the node this way).
func wireNeighbour(t *testing.T, n ns.NetNS) {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "node0"}, PeerName: "nbr0"}
	must(t, netlink.LinkAdd(v))
	addr, err := netlink.ParseAddr("10.99.0.1/24")
	must(t, err)
	must(t, netlink.AddrAdd(v, addr))
	must(t, netlink.LinkSetUp(v))
	peer, err := netlink.LinkByName("nbr0")
	must(t, err)
	must(t, netlink.LinkSetNsFd(peer, int(n.Fd())))
	must(t, n.Do(func(ns.NetNS) error {
		p, err := netlink.LinkByName("nbr0")
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr("10.99.0.2/24")
		if err := netlink.AddrAdd(p, a); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(p); err != nil {
			return err
		}
		if err := writeSysctl("net/ipv4/conf/all/route_localnet", "1"); err != nil {
			return err
		}
		const table = 100
		rt := &netlink.Route{Dst: netlink.NewIPNet(net.IPv4(127, 0, 0, 1)), Gw: net.IPv4(10, 99, 0, 1), LinkIndex: p.Attrs().Index, Table: table}
		if err := netlink.RouteAdd(rt); err != nil {
			return err
		}
		to := netlink.NewRule()
		to.Priority, to.Table, to.Dst = 10, table, netlink.NewIPNet(net.IPv4(127, 0, 0, 1))
		if err := netlink.RuleAdd(to); err != nil {
			return err
		}
		local := netlink.NewRule()
		local.Priority, local.Table = 200, 255 // "lookup local", after ours
		if err := netlink.RuleAdd(local); err != nil {
			return err
		}
		old := netlink.NewRule()
		old.Priority, old.Table = 0, 255
		return netlink.RuleDel(old)
	}))
}

// receive returns the next datagram on ln, or "" when none comes within d.
func receive(ln *net.UDPConn, d time.Duration) string {
	buf := make([]byte, 64)
	_ = ln.SetReadDeadline(time.Now().Add(d))
	n, _, err := ln.ReadFromUDP(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ""
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return string(buf[:n])
}

// writeSysctl sets a sysctl of the calling thread's netns.
func writeSysctl(name, value string) error {
	return os.WriteFile("/proc/sys/"+name, []byte(value), 0o644)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
