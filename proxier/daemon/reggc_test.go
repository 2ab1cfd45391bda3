package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/conntrack/conntracktest"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/nodeapi"
)

func TestStaleRegistrations(t *testing.T) {
	reg := func(id, netns string, ips ...string) nodeapi.Registration {
		r := nodeapi.Registration{ContainerID: id, IfName: "eth0", Netns: netns}
		for _, ip := range ips {
			r.IPs = append(r.IPs, netip.MustParseAddr(ip))
		}
		return r
	}
	regs := []nodeapi.Registration{
		reg("alive", "/run/netns/alive", "10.244.1.2"),
		reg("gone", "/run/netns/gone", "10.244.1.3"),
		reg("gone-endpoint", "/run/netns/gone2", "10.244.1.4", "fd00::4"),
		reg("no-netns", "", "10.244.1.5"),
		reg("gone-no-ip", "/run/netns/gone3"),
	}
	gone := func(p string) bool { return p != "/run/netns/alive" }
	endpoint := func(a netip.Addr) bool { return a == netip.MustParseAddr("fd00::4") }
	var got []string
	for _, r := range staleRegistrations(regs, gone, endpoint) {
		got = append(got, r.ContainerID)
	}
	if diff := cmp.Diff([]string{"gone", "gone-no-ip"}, got); diff != "" {
		t.Errorf("stale registrations (-want +got):\n%s", diff)
	}
}

func TestNetnsGone(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "cni-1")
	if err := os.WriteFile(present, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		present:                            false,
		filepath.Join(dir, "cni-2"):        true,  // gone from a directory we see
		filepath.Join(dir, "run", "cni-3"): false, // a directory we do not see: unknown
		"/proc/999999999/ns/net":           false, // a PID we do not see
	} {
		if got := netnsGone(path); got != want {
			t.Errorf("netnsGone(%s) = %v, want %v", path, got, want)
		}
	}
}

// A pod whose DEL never reached the proxier: once its network namespace is gone and its IP
// is in no EndpointSlice, the GC drops its registration, and its flows go with it. A gone
// namespace whose IP is still an endpoint keeps its registration.
func TestRegistrationGCRemovesGonePods(t *testing.T) {
	k := newFakeKernel()
	dir := t.TempDir()
	gonePod, servingPod := netip.MustParseAddr("10.244.1.7"), netip.MustParseAddr("10.244.1.8")
	k.ct.Add(conntracktest.NATFlow(ipvs.TCP, netip.MustParseAddrPort("10.244.1.3:40000"),
		netip.MustParseAddrPort("10.96.0.20:80"), netip.AddrPortFrom(gonePod, 8080)))
	h := start(t, k, service("web", "10.96.0.10", 80), slice("web", "", servingPod.String()))
	eventually(t, "readiness", h.d.Ready)
	c := nodeapi.NewClient(h.cfg.NodeAPISocket)
	var regs []nodeapi.Registration
	for i, ip := range []netip.Addr{gonePod, servingPod} {
		ns := filepath.Join(dir, "netns-"+ip.String())
		if err := os.WriteFile(ns, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		r := nodeapi.Registration{ContainerID: "c" + string(rune('1'+i)), IfName: "eth0", Netns: ns, IPs: []netip.Addr{ip}}
		if err := c.Register(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		regs = append(regs, r)
	}
	if n := h.d.gcRegistrations(h.ctx); n != 0 {
		t.Fatalf("GC removed %d registrations while every namespace exists", n)
	}
	for _, r := range regs {
		if err := os.Remove(r.Netns); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.d.gcRegistrations(h.ctx); n != 1 {
		t.Errorf("GC removed %d registrations, want 1", n)
	}
	var left []string
	for _, r := range h.d.store.List() {
		left = append(left, r.ContainerID)
	}
	if diff := cmp.Diff([]string{"c2"}, left); diff != "" {
		t.Errorf("registrations left (-want +got):\n%s", diff)
	}
	eventually(t, "the gone pod's flows to go", func() bool { return len(k.ct.Flows()) == 0 })
}
