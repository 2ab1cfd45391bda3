package status

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/conntrack"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/proxier/reconcile"
	"github.com/kubevs/kubevs/proxier/sysctl"
)

// errWrite is what the read-only wrappers answer to a write.
var errWrite = errors.New("status must not write to the kernel")

// readOnlyIPVS fails every write, so a test proves status only reads.
type readOnlyIPVS struct{ ipvs.Interface }

func (readOnlyIPVS) AddVirtualServer(ipvs.VirtualServer) error        { return errWrite }
func (readOnlyIPVS) UpdateVirtualServer(ipvs.VirtualServer) error     { return errWrite }
func (readOnlyIPVS) DeleteVirtualServer(ipvs.Key) error               { return errWrite }
func (readOnlyIPVS) AddRealServer(ipvs.Key, ipvs.RealServer) error    { return errWrite }
func (readOnlyIPVS) UpdateRealServer(ipvs.Key, ipvs.RealServer) error { return errWrite }
func (readOnlyIPVS) DeleteRealServer(ipvs.Key, ipvs.RealServer) error { return errWrite }
func (readOnlyIPVS) SetTimeouts(ipvs.Timeouts) error                  { return errWrite }

type readOnlyLink struct{ link.Interface }

func (readOnlyLink) EnsureDummy(string) error               { return errWrite }
func (readOnlyLink) DeleteDummy(string) error               { return errWrite }
func (readOnlyLink) AddAddress(string, netip.Addr) error    { return errWrite }
func (readOnlyLink) DeleteAddress(string, netip.Addr) error { return errWrite }

// realAdapters opens the Linux IPVS and link adapters in the calling goroutine's network
// namespace; they are closed when the test or benchmark ends.
func realAdapters(tb testing.TB) (ipvs.Interface, link.Interface) {
	tb.Helper()
	iv, err := ipvs.New()
	if err != nil {
		tb.Fatalf("ipvs: %v", err)
	}
	tb.Cleanup(func() { iv.(io.Closer).Close() })
	lk, err := link.New()
	if err != nil {
		tb.Fatalf("link: %v", err)
	}
	tb.Cleanup(func() { lk.(io.Closer).Close() })
	return iv, lk
}

// TestStatusReadsTheKernel programs a small table with the real adapters in a fresh netns
// of the test VM, then checks the report status reads back, in sync and after drift.
func TestStatusReadsTheKernel(t *testing.T) {
	testenv.RequireVM(t)
	testenv.InNetns(t, func() {
		iv, lk := realAdapters(t)

		web := service("default/web", "10.96.0.10", "TCP:80")
		dns := service("kube-system/dns", "10.96.0.53", "UDP:53")
		client := fake.NewClientset(web, dns, node("10.244.0.0/24"),
			slice(web, "web-1", "10.244.1.5", "10.244.2.6"), slice(dns, "dns-1", "10.244.1.7"))
		env := Env{API: clientsetSource{client}, IPVS: readOnlyIPVS{iv}, Link: readOnlyLink{lk}}
		run := func() Report {
			t.Helper()
			r, err := Run(context.Background(), testNode, config.New(), env)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			return r
		}

		// Nothing programmed: both virtual servers and the dummy link are missing.
		r := run()
		if diff := cmp.Diff([]DriftKind{MissingVirtualServer, MissingVirtualServer, MissingDummy}, kinds(r)); diff != "" {
			t.Errorf("empty kernel: drift kinds (-want +got):\n%s\n%v", diff, r.Drift)
		}

		// Program what the API asks for, as the proxier would.
		webKey, dnsKey := key(ipvs.TCP, "10.96.0.10", 80), key(ipvs.UDP, "10.96.0.53", 53)
		must(t, lk.EnsureDummy(link.DefaultDummy))
		for _, a := range []string{"10.96.0.10", "10.96.0.53"} {
			must(t, lk.AddAddress(link.DefaultDummy, netip.MustParseAddr(a)))
		}
		must(t, iv.AddVirtualServer(ipvs.VirtualServer{Key: webKey, Scheduler: "rr"}))
		must(t, iv.AddVirtualServer(ipvs.VirtualServer{Key: dnsKey, Scheduler: "rr"}))
		must(t, iv.AddRealServer(webKey, rs("10.244.1.5:8080", 1)))
		must(t, iv.AddRealServer(webKey, rs("10.244.2.6:8080", 1)))
		must(t, iv.AddRealServer(dnsKey, rs("10.244.1.7:8053", 1)))
		r = run()
		if len(r.Drift) != 0 {
			t.Errorf("programmed kernel: drift %v, want none", r.Drift)
		}
		var got []string
		for _, s := range r.Services {
			for _, v := range s.VirtualServers {
				for _, x := range v.RealServers {
					got = append(got, s.Namespace+"/"+s.Name+" "+v.Protocol+" "+netip.AddrPortFrom(v.Address, v.Port).String()+" "+v.Scheduler+
						" -> "+netip.AddrPortFrom(x.Address, x.Port).String()+" "+x.State)
				}
			}
		}
		want := []string{
			"default/web TCP 10.96.0.10:80 rr -> 10.244.1.5:8080 ok",
			"default/web TCP 10.96.0.10:80 rr -> 10.244.2.6:8080 ok",
			"kube-system/dns UDP 10.96.0.53:53 rr -> 10.244.1.7:8053 ok",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("report (-want +got):\n%s", diff)
		}

		// Drift: a removed endpoint, a weight changed by hand, a leftover virtual server.
		must(t, iv.DeleteRealServer(webKey, rs("10.244.1.5:8080", 0)))
		must(t, iv.UpdateRealServer(dnsKey, rs("10.244.1.7:8053", 5)))
		must(t, iv.AddVirtualServer(ipvs.VirtualServer{Key: key(ipvs.TCP, "10.96.0.10", 8443), Scheduler: "wlc"}))
		r = run()
		if diff := cmp.Diff([]DriftKind{MissingRealServer, WrongWeight, OrphanVirtualServer}, kinds(r)); diff != "" {
			t.Errorf("after drift: kinds (-want +got):\n%s\n%v", diff, r.Drift)
		}
	})
}

func kinds(r Report) []DriftKind {
	var out []DriftKind
	for _, d := range r.Drift {
		out = append(out, d.Kind)
	}
	return out
}

// TestStatusCommandInVM runs the command (flags, kubeconfig, the Linux adapters opened by the
// command, the table, the exit code) over the VM's kernel: IPVS, the dummy link, kubevs's
// sets and its iptables rules, all programmed by the real reconciler. The API is the fake
// clientset: a kube-apiserver takes minutes to start under TCG, and the REST source has its
// own test against a real one on the host.
func TestStatusCommandInVM(t *testing.T) {
	testenv.RequireVM(t)
	web := service("default/web", "10.96.5.10", "TCP:80")
	web.Spec.Type = v1.ServiceTypeNodePort
	web.Spec.Ports[0].NodePort = 30080
	n := node("10.244.0.0/24", "fd00:244::/64") // dual-stack: iptables and ip6tables rules
	client := fake.NewClientset(web, slice(web, "web-a", "10.244.1.5"), n)
	kc := writeKubeconfig(t, t.TempDir(), "kubeconfig", "https://192.0.2.1:6443") // never dialled
	open := func(rc *rest.Config) (Env, error) {
		env, err := openEnv(rc)
		env.API = clientsetSource{client}
		return env, err
	}
	testenv.InNetns(t, func() {
		iv, lk := realAdapters(t)
		nf, err := netfilter.New()
		must(t, err)
		is := ipset.New()
		program(t, client, n, reconcile.Kernel{IPVS: iv, Link: lk, IPSet: is, Netfilter: nf,
			Conntrack: conntrack.New(), Sysctl: sysctl.New()})

		status := func(args ...string) (int, string, string) {
			var out, errb strings.Builder
			start := time.Now()
			code := mainWith(context.Background(), append([]string{"--kubeconfig", kc, "--node", testNode}, args...), &out, &errb, os.Getenv, open)
			t.Logf("kubevs status %q: exit %d in %v", args, code, time.Since(start).Round(time.Millisecond))
			return code, out.String(), errb.String()
		}
		code, out, errs := status()
		if code != ExitOK || !strings.Contains(out, "default/web (NodePort)\nTCP  10.96.5.10:80 rr\n  -> 10.244.1.5:8080") {
			t.Fatalf("in sync: exit %d, stderr %q, stdout:\n%s", code, errs, out)
		}

		// Drift in each part: a weight changed by hand, a flushed chain, a deleted member.
		k := key(ipvs.TCP, "10.96.5.10", 80)
		must(t, iv.UpdateRealServer(k, rs("10.244.1.5:8080", 0)))
		if out, err := exec.Command("iptables", "-t", "nat", "-F", "KUBE-SERVICES").CombinedOutput(); err != nil {
			t.Fatalf("iptables -t nat -F KUBE-SERVICES: %v: %s", err, out)
		}
		must(t, is.DeleteEntries("KUBE-CLUSTER-IP", "10.96.5.10,tcp:80"))
		code, out, errs = status("-o", "json")
		var r Report
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != ExitDrift {
			t.Fatalf("drift: exit %d (%v), stderr %q, stdout:\n%s", code, err, errs, out)
		}
		var got []string
		for _, d := range r.Drift {
			got = append(got, string(d.Kind)+" "+d.Object)
		}
		want := []string{
			"wrong-weight 10.244.1.5:8080",
			"missing-set-member KUBE-CLUSTER-IP 10.96.5.10,tcp:80",
			"rules-differ inet nat KUBE-SERVICES",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("drift (-want +got):\n%s\n%s", diff, out)
		}
	})
}

func desiredVS(v ipvs.VirtualServer) desired.VirtualServer {
	return desired.VirtualServer{VirtualServer: v}
}
