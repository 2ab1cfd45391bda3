package e2e

// Scenarios of the bed itself: they prove the control plane, the CNI chain, the pod simulator
// and the outside host work before any Service scenario relies on them.

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/test/bed"
)

func TestAPIServerAnswers(t *testing.T) {
	f := New(t)
	ctx := f.Context()
	v, err := f.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if !strings.HasPrefix(v.GitVersion, "v1.") {
		t.Errorf("server version %q, want a v1.x release", v.GitVersion)
	}
	node, err := f.Client.CoreV1().Nodes().Get(ctx, f.Bed.NodeName(), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node: %v", err)
	}
	var internal []corev1.NodeAddress
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			internal = append(internal, a)
		}
	}
	got := map[string]any{"podCIDR": node.Spec.PodCIDR, "podCIDRs": node.Spec.PodCIDRs, "internalIPs": internal, "ready": readyCondition(node)}
	// Dual-stack unless the bed is IPv4-only, IPv4 first in every list.
	wantInternal := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: f.Bed.NodeIP().String()}}
	if f.Bed.DualStack() {
		wantInternal = append(wantInternal, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: f.Bed.NodeIPv6().String()})
	}
	want := map[string]any{
		"podCIDR":     f.Bed.PodCIDR(),
		"podCIDRs":    f.Bed.PodCIDRs(),
		"internalIPs": wantInternal,
		"ready":       corev1.ConditionTrue,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("node %s (-want +got):\n%s", node.Name, diff)
	}
	k, err := f.Client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get service kubernetes: %v", err)
	}
	// The API server allocated the kubernetes Service from the bed's primary (IPv4) range.
	if _, cidr, _ := net.ParseCIDR(bed.ServiceCIDR); !cidr.Contains(net.ParseIP(k.Spec.ClusterIP)) {
		t.Errorf("kubernetes ClusterIP %s outside %s", k.Spec.ClusterIP, bed.ServiceCIDR)
	}
	// The kubeconfig written for other components is private.
	if st, err := os.Stat(f.Bed.Kubeconfig); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig %s: mode %v, err %v; want 0600", f.Bed.Kubeconfig, st.Mode().Perm(), err)
	}
}

func readyCondition(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

func TestPodReachableFromNodeAndOtherPod(t *testing.T) {
	f := New(t)
	pods := f.CreatePods("reach", 2)
	a, b := pods[0], pods[1]
	if _, cidr, _ := net.ParseCIDR(f.Bed.PodCIDR()); !cidr.Contains(a.IP) || !cidr.Contains(b.IP) || a.IP.Equal(b.IP) {
		t.Fatalf("pod IPs %s and %s: want two distinct addresses in %s", a.IP, b.IP, f.Bed.PodCIDR())
	}
	ctx := f.Context()

	// From the node: its own address on the bridge is the pods' gateway, so the pod sees it.
	f.ExpectHTTP(f.FromNode(), PodURL(a, "/hostname")).Body(a.Name)
	// From the other pod across the bridge: no NAT, the server sees the client pod's IP.
	f.ExpectHTTP(f.FromPod(b), PodURL(a, "/hostname")).Body(a.Name)
	f.ExpectHTTP(f.FromPod(b), PodURL(a, "/clientip")).Body(b.IP.String())

	tests := []struct{ network, line, want string }{
		{"tcp", "hostname", a.Name},
		{"tcp", "clientip", b.IP.String()},
		{"udp", "hostname", a.Name},
		{"udp", "clientip", b.IP.String()},
	}
	addr := net.JoinHostPort(a.IP.String(), "9000")
	for _, tc := range tests {
		got, err := Echo(ctx, f.FromPod(b), tc.network, addr, tc.line)
		if err != nil {
			t.Errorf("%s %q: %v", tc.network, tc.line, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s %q to %s from pod %s: got %q, want %q", tc.network, tc.line, addr, b.Name, got, tc.want)
		}
	}
}

func TestOutsideHostReachesNodeAndPods(t *testing.T) {
	f := New(t)
	p := f.CreatePod("web", "web")
	// The outside host routes through the node like a host on the node's LAN; the pod sees
	// the outside host's own address.
	f.ExpectHTTP(f.FromOutside(), PodURL(p, "/clientip")).Body(f.Bed.OutsideIP().String())
	got, err := Echo(f.Context(), f.FromPod(p), "tcp", net.JoinHostPort(f.Bed.OutsideIP().String(), "1"), "x")
	if err == nil {
		t.Fatalf("nothing listens on the outside host, yet tcp echo answered %q", got)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("pod to outside host port 1: %v, want connection refused (the host answered)", err)
	}
}

func TestDeleteRunsDELAndFreesIP(t *testing.T) {
	f := New(t)
	ctx := f.Context()
	p := f.CreatePod("gone", "gone")
	// One address per family, and with host-local one lease per address (kubevs-ipam, when
	// the suite uses it, has its own tests of its store).
	if len(p.IPs()) != len(f.Bed.PodCIDRs()) {
		t.Errorf("pod has addresses %v, want one in each of %v", p.IPs(), f.Bed.PodCIDRs())
	}
	var leases []string
	for _, ip := range p.IPs() {
		if f.Bed.Network.IPAMDataDir == "" {
			break
		}
		lease := filepath.Join(f.Bed.Network.IPAMDataDir, bed.NetworkName, ip.String())
		data, err := os.ReadFile(lease)
		if err != nil {
			t.Fatalf("host-local lease of %s: %v", ip, err)
		}
		if !strings.Contains(string(data), p.UID) {
			t.Errorf("lease %s holds %q, want the pod's container id (bed-%s)", lease, data, p.UID)
		}
		leases = append(leases, lease)
	}
	before := bridgePorts(t, f)
	f.ExpectHTTP(f.FromNode(), PodURL(p, "/hostname")).Body(p.Name)

	if err := p.Delete(ctx); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	for _, lease := range leases {
		if _, err := os.Stat(lease); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lease %s still there after delete (err %v)", lease, err)
		}
	}
	if _, err := os.Stat(p.NS.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns %s still there after delete (err %v)", p.NS.Path(), err)
	}
	if got := bridgePorts(t, f); got != before-1 {
		t.Errorf("bridge has %d ports after delete, want %d", got, before-1)
	}
	if _, err := f.Client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{}); err == nil {
		t.Errorf("pod object %s still there after delete", p.Key())
	}
	f.ExpectHTTP(f.FromNode(), PodURL(p, "/hostname")).Fails()

	// The freed address can be handed out again: host-local reuses it once the range wraps,
	// so just check the next pod gets a working address.
	q := f.CreatePod("next", "gone")
	f.ExpectHTTP(f.FromNode(), PodURL(q, "/hostname")).Body(q.Name)
}

// bridgePorts counts the veths enslaved to the bed's bridge.
func bridgePorts(t *testing.T, f *Framework) int {
	t.Helper()
	br, err := netlink.LinkByName("cni0")
	if err != nil {
		t.Fatalf("find bridge: %v", err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	n := 0
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			n++
		}
	}
	return n
}

func TestEndpointSlicePublishesAndWithdraws(t *testing.T) {
	f := New(t)
	ctx := f.Context()
	svc := f.CreateService("eps")
	p := f.CreatePod("eps-0", "eps")
	ip := p.IP.String()

	expect := func(step string, want []Endpoint) {
		t.Helper()
		t.Log(step)
		f.expectEndpoints(svc, want...)
	}
	expect("ready pod published", []Endpoint{{IP: ip, Ready: true, Serving: true}})

	if err := p.SetReady(ctx, false); err != nil {
		t.Fatal(err)
	}
	expect("not-ready pod published not ready", []Endpoint{{IP: ip}})

	if err := p.SetReady(ctx, true); err != nil {
		t.Fatal(err)
	}
	expect("ready again", []Endpoint{{IP: ip, Ready: true, Serving: true}})

	if err := p.Terminate(ctx); err != nil {
		t.Fatal(err)
	}
	expect("terminating pod still serving", []Endpoint{{IP: ip, Serving: true, Terminating: true}})

	if err := p.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	expect("deleted pod withdrawn", nil)
}
