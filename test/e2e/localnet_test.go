package e2e

// CVE-2020-8558 from the outside host: with a loopback nodePortAddresses entry the proxier
// sets route_localnet=1, which makes the kernel accept packets to 127.0.0.0/8 on every link.
// The guard rule in KUBE-PROXY-FIREWALL must drop such a packet from a neighbour, while the
// node itself keeps its NodePort on 127.0.0.1.
//
// Found here: a node client whose source is a loopback address (the kernel's default for a
// connection to 127.0.0.1) gets no answer from a loopback NodePort. IPVS schedules the
// connection but will not send a packet with a loopback source to a real server that is not
// local (the kernel's ip_vs_xmit.c refuses to cross that route boundary), and the masquerade
// runs only after it (POSTROUTING). A client bound to one of the node's own addresses is
// answered. The scenario asserts the latter and logs what the former sees.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
)

// guardDrops returns the packet count of the localnet guard rule (the DROP of packets to
// 127.0.0.0/8 from other sources) in filter KUBE-PROXY-FIREWALL, and whether the rule exists.
func guardDrops(ctx context.Context) (int, bool, error) {
	out, err := exec.CommandContext(ctx, "iptables", "-w", "-t", "filter", "-L", "KUBE-PROXY-FIREWALL", "-v", "-n", "-x").CombinedOutput()
	if err != nil {
		return 0, false, fmt.Errorf("iptables -L KUBE-PROXY-FIREWALL: %w: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		fs := strings.Fields(line)
		// pkts bytes target prot opt in out source destination ...
		if len(fs) >= 9 && fs[2] == "DROP" && fs[7] == "!127.0.0.0/8" && fs[8] == "127.0.0.0/8" {
			n, err := strconv.Atoi(fs[0])
			return n, true, err
		}
	}
	return 0, false, nil
}

// routeLoopbackToNode makes the outside host send 127.0.0.1 to the node for the test's
// length: a policy rule ahead of "lookup local" sends it through a table whose route leads to
// the node (a neighbour on the node's L2 segment can address any frame to the node).
func (f *Framework) routeLoopbackToNode() {
	f.t.Helper()
	const table = 177
	lo := netlink.NewIPNet(net.IPv4(127, 0, 0, 1))
	to := netlink.NewRule()
	to.Priority, to.Table, to.Dst = 10, table, lo
	local := netlink.NewRule()
	local.Priority, local.Table = 200, 255
	old := netlink.NewRule()
	old.Priority, old.Table = 0, 255
	err := f.Bed.Outside.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return fmt.Errorf("find outside eth0: %w", err)
		}
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte("1"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/eth0/route_localnet", []byte("1"), 0o644); err != nil {
			return err
		}
		rt := &netlink.Route{Dst: lo, Gw: f.Bed.NodeIP(), LinkIndex: l.Attrs().Index, Table: table}
		if err := netlink.RouteAdd(rt); err != nil {
			return fmt.Errorf("add route %s: %w", rt, err)
		}
		for _, r := range []*netlink.Rule{to, local} {
			if err := netlink.RuleAdd(r); err != nil {
				return fmt.Errorf("add rule %s: %w", r, err)
			}
		}
		return netlink.RuleDel(old)
	})
	if err != nil {
		f.t.Fatalf("route 127.0.0.1 from the outside host to the node: %v", err)
	}
	f.t.Cleanup(func() {
		err := f.Bed.Outside.Do(func(ns.NetNS) error {
			if err := netlink.RuleAdd(old); err != nil {
				return err
			}
			_ = netlink.RuleDel(to)
			_ = netlink.RuleDel(local)
			for _, name := range []string{"all", "eth0"} {
				_ = os.WriteFile("/proc/sys/net/ipv4/conf/"+name+"/route_localnet", []byte("0"), 0o644)
			}
			return nil
		})
		if err != nil {
			f.t.Errorf("restore the outside host's loopback routing: %v", err)
		}
	})
}

// fromNodeAddr connects from the node with source address ip.
func (f *Framework) fromNodeAddr(ip net.IP) Source {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	return Source{Name: "node at " + ip.String(), Dial: d.DialContext}
}

func TestRouteLocalnetGuardFromOutside(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	config := filepath.Join(f.Bed.LogDir, "kubevs-proxier-localnet-"+f.Namespace+".yaml")
	text := proxierConfig(nil, f.Bed.PodCIDRs()) + "nodePortAddresses:\n- \"127.0.0.0/8\"\n- \"" + f.Bed.NodeIP().String() + "/32\"\n"
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	f.swapProxier("localnet", func(args []string) []string { return replaceArg(args, "--config=", config) })

	svc := f.CreateService("np", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	pods := f.CreatePods("np", 1)
	port := fmt.Sprint(portNamed(svc, "http").NodePort)
	loop := net.JoinHostPort("127.0.0.1", port)

	// The node reaches its NodePort on 127.0.0.1 from its own address (and the outside host
	// the node's address).
	fromNodeIP := f.fromNodeAddr(f.Bed.NodeIP())
	f.ExpectHTTP(fromNodeIP, "http://"+loop+"/hostname").Hostname(pods...)
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(pods...)
	ctx, cancel := context.WithTimeout(f.ctx, 3*time.Second)
	got, err := Get(ctx, f.FromNode(), "http://"+loop+"/hostname")
	cancel()
	t.Logf("from the node with a loopback source, GET %s: %q, %v (IPVS forwards no loopback source to a pod)", loop, got, err)
	b, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/route_localnet")
	if err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("route_localnet is %q (%v), want 1 with a loopback nodePortAddresses entry", b, err)
	}
	before, ok, err := guardDrops(f.ctx)
	if err != nil || !ok {
		path, _ := f.dumpNodeState()
		t.Fatalf("no localnet guard rule in KUBE-PROXY-FIREWALL (err %v); node state in %s", err, path)
	}

	// A neighbour's connection to 127.0.0.1:NODEPORT through the node: dropped by the guard.
	f.routeLoopbackToNode()
	f.expectDropped(f.FromOutside(), loop)
	after, _, err := guardDrops(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		path, _ := f.dumpNodeState()
		t.Fatalf("the guard rule dropped %d packets before and %d after the neighbour's attempts: something else dropped them; node state in %s", before, after, path)
	}
	t.Logf("the guard dropped %d packets from the outside host to %s", after-before, loop)

	// The node's own loopback NodePort still works, and the outside host's NodePort.
	f.ExpectHTTP(fromNodeIP, "http://"+loop+"/hostname").Hostname(pods...)
	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(pods...)
}
