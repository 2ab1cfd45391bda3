package status

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/install"
	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/internal/fixture"
	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/link/linktest"
	"github.com/kubevs/kubevs/proxier/netfilter/netfiltertest"
	"github.com/kubevs/kubevs/proxier/reconcile"
)

func TestDefaultKubeconfigIsTheInstallers(t *testing.T) {
	if DefaultKubeconfig != install.DefaultKubeconfig {
		t.Errorf("DefaultKubeconfig = %q, the installer writes %q", DefaultKubeconfig, install.DefaultKubeconfig)
	}
}

func TestDefaultProxierConfigIsTheInstallers(t *testing.T) {
	if DefaultProxierConfig != install.DefaultProxierConfig {
		t.Errorf("DefaultProxierConfig = %q, the installer writes %q", DefaultProxierConfig, install.DefaultProxierConfig)
	}
}

// Without --config, status reads the installed proxier's configuration when there is one.
func TestStatusReadsTheInstalledConfig(t *testing.T) {
	c := newCluster(t)
	if code, out, _ := c.status(t); code != ExitOK { // no installed configuration: defaults
		t.Fatalf("exit %d without a configuration:\n%s", code, out)
	}
	path := filepath.Join(t.TempDir(), "proxier.yaml")
	must(t, os.WriteFile(path, []byte("apiVersion: kubevs.io/v1alpha1\nkind: ProxierConfiguration\nscheduler: wlc\n"), 0o600))
	old := proxierConfigDefault
	proxierConfigDefault = path
	t.Cleanup(func() { proxierConfigDefault = old })
	code, out, _ := c.status(t, "-o", "json")
	if code != ExitDrift || !strings.Contains(out, `"want": "wlc"`) {
		t.Errorf("exit %d; want drift to the installed configuration's wlc scheduler:\n%s", code, out)
	}
}

// writeKubeconfig writes a kubeconfig for server into dir and returns its path.
func writeKubeconfig(t *testing.T, dir, name, server string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	data := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " + server +
		"\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n"
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRESTConfigOrder(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	dir := t.TempDir()
	flagKC := writeKubeconfig(t, dir, "flag", "https://flag:6443")
	envKC := writeKubeconfig(t, dir, "env", "https://env:6443")
	cfgKC := writeKubeconfig(t, dir, "cfg", "https://cfg:6443")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name                 string
		flag, env, cfg       string
		defaultExists        bool
		wantHost, wantErrSub string
	}{
		{name: "flag first", flag: flagKC, env: envKC, cfg: cfgKC, defaultExists: true, wantHost: "https://flag:6443"},
		{name: "then $KUBECONFIG, a list", env: missing + string(filepath.ListSeparator) + envKC, cfg: cfgKC, wantHost: "https://env:6443"},
		{name: "then the configuration's kubeconfig", cfg: cfgKC, defaultExists: true, wantHost: "https://cfg:6443"},
		{name: "then the installer's path", defaultExists: true, wantErrSub: "load kubeconfig " + DefaultKubeconfig},
		{name: "else in-cluster", wantErrSub: "not in a cluster"},
		{name: "a missing flag file is an error", flag: missing, wantErrSub: "load kubeconfig " + missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := RESTConfig(tt.flag, tt.env, tt.cfg, func(p string) bool { return p == DefaultKubeconfig && tt.defaultExists })
			if tt.wantErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrSub) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErrSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rc.Host != tt.wantHost || rc.UserAgent != "kubevs-status" {
				t.Errorf("host %q agent %q, want %q kubevs-status", rc.Host, rc.UserAgent, tt.wantHost)
			}
		})
	}
}

// cluster is a fake API server and a fake kernel the proxier's reconciler programmed.
type cluster struct {
	client *fake.Clientset
	ipvs   *ipvstest.Fake
	link   *linktest.Fake
	ipset  *ipsettest.Fake
	nf     *netfiltertest.Fake
	kc     string // a kubeconfig path for --kubeconfig (never dialled)
}

// newCluster lists the test cluster's Services from a fake clientset and lets the real
// reconciler program a fake kernel from what ListDesired computes, as the proxier would.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	web := service("default/web", "10.96.0.10", "TCP:80", "TCP:443")
	web.Spec.Type = v1.ServiceTypeLoadBalancer
	web.Spec.Ports[0].NodePort = 30080
	web.Spec.Ports[1].NodePort = 30443
	web.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.10"}}
	dns := service("kube-system/dns", "10.96.0.53", "UDP:53", "TCP:53")
	dns.Annotations = map[string]string{desired.SchedulerAnnotation: "lc"}
	empty := service("team/empty", "10.96.0.77", "TCP:8080")
	fk := fixture.NewKernel(fixture.Sysctls())
	c := &cluster{
		client: fake.NewClientset(web, dns, empty, node("10.244.0.0/24"),
			slice(web, "web-1", "10.244.1.5", "10.244.2.6"), slice(dns, "dns-1", "10.244.1.7")),
		ipvs:  fk.IPVS,
		link:  fk.Link,
		ipset: fk.IPSet,
		nf:    fk.Netfilter,
		kc:    writeKubeconfig(t, t.TempDir(), "kubeconfig", "https://192.0.2.1:6443"),
	}
	k := reconcile.Kernel{IPVS: fk.IPVS, Link: fk.Link, IPSet: fk.IPSet, Netfilter: fk.Netfilter, Conntrack: fk.Conntrack, Sysctl: fk.Sysctl}
	program(t, c.client, node("10.244.0.0/24"), k)
	c.ipvs.ResetOps()
	c.link.ResetOps()
	c.ipset.ResetOps()
	c.nf.ResetOps()
	return c
}

// program lets the real reconciler program k from what ListDesired computes of client's
// objects (the default configuration, the Node n), as the proxier would.
func program(t *testing.T, client kubernetes.Interface, n *v1.Node, k reconcile.Kernel) {
	t.Helper()
	ctx := klog.NewContext(context.Background(), logr.Discard())
	wants, err := ListDesired(ctx, clientsetSource{client}, testNode, config.New(), nil, nil)
	must(t, err)
	all := map[types.NamespacedName]desired.Service{}
	for _, w := range wants {
		all[w.Service] = w.State
	}
	r := reconcile.New(k, reconcile.Options{Desired: derive.Options(config.New(), n, nil)})
	must(t, r.Start(ctx))
	must(t, r.Resync(ctx, all))
}

// status runs `kubevs status args...` over the cluster and checks that it wrote nothing.
func (c *cluster) status(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	open := func(*rest.Config) (Env, error) {
		return Env{API: clientsetSource{c.client}, IPVS: c.ipvs, Link: c.link, IPSet: c.ipset, Netfilter: c.nf}, nil
	}
	noenv := func(string) string { return "" }
	code = mainWith(context.Background(), append([]string{"--kubeconfig", c.kc, "--node", testNode}, args...), &out, &errb, noenv, open)
	if ops := append(c.ipvs.Ops(), c.link.Ops()...); len(ops) != 0 {
		t.Errorf("status wrote to the kernel: %q", ops)
	}
	for _, op := range append(c.ipset.Ops(), c.nf.Ops()...) {
		if verb, _, _ := strings.Cut(op, " "); verb != ipsettest.OpSets && verb != ipsettest.OpList && verb != netfiltertest.OpDump {
			t.Errorf("status wrote to the kernel: %q", op)
		}
	}
	c.ipset.ResetOps()
	c.nf.ResetOps()
	return code, out.String(), errb.String()
}

func TestStatusOfWhatTheReconcilerProgrammed(t *testing.T) {
	c := newCluster(t)
	must(t, c.ipvs.SetConns(key(ipvs.TCP, "10.96.0.10", 80), netip.MustParseAddrPort("10.244.1.5:8080"), 2, 15))
	code, out, errs := c.status(t)
	if code != ExitOK || errs != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errs)
	}
	fixture.Golden(t, "in-sync", out)
}

func TestStatusDrift(t *testing.T) {
	c := newCluster(t)
	webHTTP, dnsTCP := key(ipvs.TCP, "10.96.0.10", 80), key(ipvs.TCP, "10.96.0.53", 53)
	// Someone edits the table behind the proxier's back, and a connection is open.
	must(t, c.ipvs.SetConns(webHTTP, netip.MustParseAddrPort("10.244.2.6:8080"), 1, 0))
	must(t, c.ipvs.DeleteRealServer(webHTTP, rs("10.244.1.5:8080", 0)))
	must(t, c.ipvs.UpdateRealServer(webHTTP, rs("10.244.2.6:8080", 3)))
	must(t, c.ipvs.AddRealServer(webHTTP, rs("10.244.9.9:8080", 1)))
	must(t, c.ipvs.AddRealServer(webHTTP, rs("10.244.9.10:8080", 0)))
	must(t, c.ipvs.UpdateVirtualServer(ipvs.VirtualServer{Key: dnsTCP, Scheduler: "rr", Persistent: true, Timeout: 30}))
	must(t, c.ipvs.DeleteVirtualServer(key(ipvs.UDP, "10.96.0.53", 53)))
	must(t, c.ipvs.AddVirtualServer(ipvs.VirtualServer{Key: key(ipvs.TCP, "10.96.0.200", 80), Scheduler: "rr"}))
	must(t, c.ipvs.AddVirtualServer(ipvs.VirtualServer{Key: key(ipvs.TCP, "192.0.2.7", 80), Scheduler: "rr"})) // not kubevs's
	must(t, c.link.AddAddress(link.DefaultDummy, netip.MustParseAddr("10.96.0.200")))
	must(t, c.link.DeleteAddress(link.DefaultDummy, netip.MustParseAddr("10.96.0.77")))
	c.ipvs.ResetOps()
	c.link.ResetOps()

	code, out, _ := c.status(t)
	if code != ExitDrift {
		t.Errorf("exit %d, want %d", code, ExitDrift)
	}
	fixture.Golden(t, "drift", out)
	code, out, _ = c.status(t, "-o", "json")
	if code != ExitDrift {
		t.Errorf("json: exit %d, want %d", code, ExitDrift)
	}
	fixture.Golden(t, "drift-json", out)
}

func TestStatusErrors(t *testing.T) {
	dir := t.TempDir()
	badCfg := filepath.Join(dir, "bad.yaml")
	must(t, os.WriteFile(badCfg, []byte("apiVersion: kubevs.io/v1alpha1\nkind: ProxierConfiguration\nbogus: 1\n"), 0o600))
	tests := []struct {
		name   string
		args   []string
		open   error
		stderr string
	}{
		{name: "unknown flag", args: []string{"--bogus"}, stderr: "flag provided but not defined: -bogus"},
		{name: "extra argument", args: []string{"now"}, stderr: `kubevs status: unexpected arguments ["now"]`},
		{name: "unknown format", args: []string{"-o", "yaml"}, stderr: `kubevs status: unknown output format "yaml" (want table or json)`},
		{name: "bad configuration", args: []string{"--config", badCfg}, stderr: `unknown field "bogus"`},
		{name: "kernel unreadable", open: errors.New("open IPVS: no IPVS"), stderr: "kubevs status: open IPVS: no IPVS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t)
			var out, errb bytes.Buffer
			open := func(*rest.Config) (Env, error) {
				return Env{API: clientsetSource{c.client}, IPVS: c.ipvs, Link: c.link}, tt.open
			}
			args := append([]string{"--kubeconfig", c.kc, "--node", testNode}, tt.args...)
			code := mainWith(context.Background(), args, &out, &errb, func(string) string { return "" }, open)
			if code != ExitError || !strings.Contains(errb.String(), tt.stderr) || out.Len() != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, and %q", code, out.String(), errb.String(), tt.stderr)
			}
		})
	}
}

func TestStatusHelp(t *testing.T) {
	var out, errb bytes.Buffer
	code := mainWith(context.Background(), []string{"-h"}, &out, &errb, func(string) string { return "" }, nil)
	if code != ExitOK || !strings.Contains(errb.String(), "Exit status: 0 no drift, 1 drift, 2 error") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// The configuration's excludeCIDRs and scheduler reach the comparison.
func TestStatusUsesTheConfiguration(t *testing.T) {
	c := newCluster(t)
	must(t, c.ipvs.AddVirtualServer(ipvs.VirtualServer{Key: key(ipvs.TCP, "10.96.0.10", 22), Scheduler: "rr"}))
	c.ipvs.ResetOps()
	cfg := filepath.Join(t.TempDir(), "proxier.yaml")
	must(t, os.WriteFile(cfg, []byte("apiVersion: kubevs.io/v1alpha1\nkind: ProxierConfiguration\nscheduler: wlc\nipvs:\n  excludeCIDRs: [10.96.0.10/32]\n"), 0o600))
	code, out, _ := c.status(t, "--config", cfg, "-o", "json")
	if code != ExitDrift {
		t.Fatalf("exit %d, want drift (wlc is not what the reconciler programmed)", code)
	}
	if strings.Contains(out, "10.96.0.10:22") || !strings.Contains(out, `"want": "wlc"`) {
		t.Errorf("want no orphan on 10.96.0.10:22 (excluded) and a wlc scheduler drift:\n%s", out)
	}
	var n int
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"kind": "wrong-scheduler"`) {
			n++
		}
	}
	// web's six (ClusterIP, NodePort and LoadBalancer, two ports each) and empty's use the
	// global scheduler; dns keeps its annotation (lc).
	if diff := cmp.Diff(7, n); diff != "" {
		t.Errorf("wrong-scheduler drifts (-want +got):\n%s", diff)
	}
}

// An API server that does not answer is an error (exit 2) once --timeout has passed.
func TestStatusTimeout(t *testing.T) {
	c := newCluster(t)
	src := blockingSource{clientsetSource{c.client}}
	var out, errb bytes.Buffer
	open := func(*rest.Config) (Env, error) { return Env{API: src, IPVS: c.ipvs, Link: c.link}, nil }
	start := time.Now()
	code := mainWith(context.Background(), []string{"--kubeconfig", c.kc, "--node", testNode, "--timeout", "200ms"}, &out, &errb, func(string) string { return "" }, open)
	if code != ExitError || !strings.Contains(errb.String(), context.DeadlineExceeded.Error()) {
		t.Errorf("exit %d, stderr %q; want 2 and a deadline error", code, errb.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v despite --timeout 200ms", d)
	}
}

// blockingSource's Node waits for the context, as a request to a silent server does.
type blockingSource struct{ clientsetSource }

func (blockingSource) Node(ctx context.Context, _ string) (*v1.Node, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
