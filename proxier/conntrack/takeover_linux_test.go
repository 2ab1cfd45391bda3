//go:build linux

package conntrack

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// The kernel's rule behind a takeover from kube-proxy's nftables (or iptables) mode, on real
// nftables and conntrack: a UDP flow kube-proxy's DNAT sent to a pod keeps that pod after
// kube-proxy's table is gone, whatever now serves new flows (here a DNAT to the other pod
// stands for IPVS, which the host kernel lacks): its conntrack entry holds the NAT binding,
// and the nat hooks apply a bound entry without looking at any rule. Only deleting the entry
// moves the flow: kubevs's Unserved filter keeps it while its pod is still an endpoint, and
// deletes it once the pod is not (the next packet then finds the current endpoints).
func TestDNATedUDPFlowOutlivesKubeProxysTable(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		testenv.Skip(t, "needs nft (Debian's nftables; test/scripts/deps.sh installs it)")
	}
	testenv.EnterNetns(t)
	vip := ap("10.96.0.10:53")
	pod1, pod2 := ap("10.0.1.2:53"), ap("10.0.2.2:53")
	for _, args := range [][]string{
		{"addr", "add", "10.0.1.2/32", "dev", "lo"},
		{"addr", "add", "10.0.2.2/32", "dev", "lo"},
		{"route", "add", "10.96.0.10/32", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	nft := func(script string) {
		t.Helper()
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft -f: %v\n%s", err, out)
		}
	}
	dnat := func(table string, to netip.AddrPort) string {
		return "table ip " + table + " {\n chain out { type nat hook output priority -100; ip daddr " + vip.Addr().String() +
			" udp dport 53 dnat to " + to.Addr().String() + " ; }\n}\n"
	}
	// The pods: each answers with its name.
	for name, at := range map[string]netip.AddrPort{"pod1": pod1, "pod2": pod2} {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(at))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		go func() {
			buf := make([]byte, 16)
			for {
				_, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				_, _ = c.WriteToUDPAddrPort([]byte(name), from)
			}
		}()
	}
	nft(dnat(netfilter.KubeProxyNFTable, pod1)) // kube-proxy's nftables mode, reduced to one DNAT
	client, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(ap("127.0.0.1:40000")), net.UDPAddrFromAddrPort(vip))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	ask := func() string {
		t.Helper()
		buf := make([]byte, 16)
		for range 5 {
			if _, err := client.Write([]byte("q")); err != nil {
				t.Fatal(err)
			}
			_ = client.SetReadDeadline(time.Now().Add(time.Second))
			if n, err := client.Read(buf); err == nil {
				return string(buf[:n])
			}
		}
		return "(no answer)"
	}
	if got := ask(); got != "pod1" {
		t.Fatalf("through kube-proxy's DNAT: answer from %s, want pod1", got)
	}

	// The takeover: something else serves new flows, kube-proxy's table goes.
	nft(dnat("stand-in-for-ipvs", pod2))
	if removed, err := netfilter.NewNFTables().RemoveKubeProxyTables(); err != nil || len(removed) != 1 {
		t.Fatalf("remove kube-proxy's table: %v, %v", removed, err)
	}
	if got := ask(); got != "pod1" {
		t.Errorf("after kube-proxy's table went: answer from %s, want pod1 (the entry keeps its binding)", got)
	}
	l := New()
	unserved := func(endpoints ...netip.AddrPort) Filter {
		return Filter{Match: Unserved, Proto: ipvs.UDP, Addr: vip.Addr(), Port: vip.Port(), Keep: KeepList(endpoints)}
	}
	if n, err := l.Delete([]Filter{unserved(pod1, pod2)}); err != nil || n != 0 {
		t.Errorf("delete the flows no endpoint serves, pod1 one of them: %d, %v; want 0, nil", n, err)
	}
	if got := ask(); got != "pod1" {
		t.Errorf("with pod1 still an endpoint: answer from %s, want pod1", got)
	}
	if n, err := l.Delete([]Filter{unserved(pod2)}); err != nil || n != 1 {
		t.Errorf("delete the flows no endpoint serves, pod1 gone: %d, %v; want 1, nil", n, err)
	}
	if got := ask(); got != "pod2" {
		t.Errorf("with pod1 no longer an endpoint: answer from %s, want pod2", got)
	}
}
