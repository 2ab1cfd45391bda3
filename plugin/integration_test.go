package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// harness is one node: a fresh "host" network namespace where the chain runs (bridge cni0,
// host-local, kubevs), a CNI cache dir, and optionally an in-process node API server standing
// in for the proxier.
type harness struct {
	t     testing.TB
	bin   string
	dir   string
	host  ns.NetNS
	sock  string
	store *nodeapi.Store
	cni   *libcni.CNIConfig
	ready atomic.Bool
	stop  func()
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	testenv.RequireRoot(t)
	h := &harness{t: t, bin: cniBin(t), dir: t.TempDir()}
	h.host = testenv.NewNetns(t)
	// The bridge with a fixed MAC: a bridge left to pick its own takes the lowest port's, so
	// it changes as pods come and go, and the bridge plugin's CHECK (which compares it with
	// the MAC in the cached result) fails for reasons that have nothing to do with kubevs.
	if err := h.inHost(func() error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "cni0", HardwareAddr: net.HardwareAddr{0x02, 0x6b, 0x76, 0, 0, 1}}}
		if err := netlink.LinkAdd(br); err != nil {
			return err
		}
		return netlink.LinkSetUp(br)
	}); err != nil {
		t.Fatalf("create bridge: %v", err)
	}
	h.sock = filepath.Join(h.dir, "run", "proxier.sock")
	// An explicit exec: libcni fills a nil one lazily, which races when pods are added
	// concurrently (as a runtime does).
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	h.cni = libcni.NewCNIConfigWithCacheDir([]string{h.bin}, filepath.Join(h.dir, "cache"), exec)
	store, err := nodeapi.NewStore(filepath.Join(h.dir, "regs"))
	if err != nil {
		t.Fatal(err)
	}
	h.store = store
	return h
}

// useStore replaces the store (before serve) with one in dir.
func (h *harness) useStore(dir string) {
	h.t.Helper()
	store, err := nodeapi.NewStore(dir)
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = store
}

// serve starts the in-process node API server.
func (h *harness) serve() {
	h.t.Helper()
	srv := nodeapi.NewServer(h.sock, h.store, func() nodeapi.Status { return nodeapi.Status{Ready: h.ready.Load(), Message: "informers syncing"} })
	if err := srv.Listen(); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	h.stop = func() { cancel(); <-done }
	h.t.Cleanup(h.stop)
}

// list returns the conflist: bridge + host-local, then kubevs with extra fields. The API
// timeout is generous: 50 plugin processes at once on a loaded 2-core machine can take more
// than the default second to be scheduled, and these tests are about correctness (the unit
// tests cover the timeouts).
func (h *harness) list(version, kubevsExtra string) *libcni.NetworkConfigList {
	h.t.Helper()
	conf := fmt.Sprintf(`{
  "cniVersion": %q, "name": "kubevs-test",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": "10.244.0.0/16"}]]}},
    {"type": "kubevs", "socket": %q, "logFile": %q, "logLevel": 4,
     "timeouts": {"api": "5s", "launch": "10s"}%s}
  ]}`, version, filepath.Join(h.dir, "ipam"), h.sock, filepath.Join(h.dir, "kubevs.log"), kubevsExtra)
	l, err := libcni.ConfListFromBytes([]byte(conf))
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}

// pod is a fresh network namespace and the path plugins open it by.
type pod struct {
	id   string
	ns   ns.NetNS
	path string
}

func (h *harness) newPod(id string) *pod {
	h.t.Helper()
	n := testenv.NewNetns(h.t)
	return &pod{id: id, ns: n, path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), n.Fd())}
}

func (p *pod) rt() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: p.id, NetNS: p.path, IfName: "eth0", Args: [][2]string{
		{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "pod-" + p.id}, {"K8S_POD_UID", "uid-" + p.id},
	}}
}

// inHost runs fn in the host namespace; plugins exec'd from fn run there too.
func (h *harness) inHost(fn func() error) error {
	return h.host.Do(func(ns.NetNS) error { return fn() })
}

func (h *harness) add(l *libcni.NetworkConfigList, p *pod) (types.Result, error) {
	var res types.Result
	err := h.inHost(func() (err error) {
		res, err = h.cni.AddNetworkList(context.Background(), l, p.rt())
		return err
	})
	return res, err
}

func (h *harness) del(l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return h.inHost(func() error { return h.cni.DelNetworkList(context.Background(), l, rt) })
}

func (h *harness) check(l *libcni.NetworkConfigList, p *pod) error {
	return h.inHost(func() error { return h.cni.CheckNetworkList(context.Background(), l, p.rt()) })
}

// hostLinks returns the host-side veths with their hairpin flag.
func (h *harness) hostLinks() map[string]bool {
	h.t.Helper()
	out := map[string]bool{}
	err := h.inHost(func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Type() != "veth" {
				continue
			}
			pi, err := netlink.LinkGetProtinfo(l)
			if err != nil {
				return fmt.Errorf("protinfo of %s: %w", l.Attrs().Name, err)
			}
			out[l.Attrs().Name] = pi.Hairpin
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// leasedIPs lists the addresses host-local holds (one file per address).
func (h *harness) leasedIPs() []string {
	var out []string
	files, _ := filepath.Glob(filepath.Join(h.dir, "ipam", "kubevs-test", "*"))
	for _, f := range files {
		if _, err := netip.ParseAddr(filepath.Base(f)); err == nil {
			out = append(out, filepath.Base(f))
		}
	}
	return out
}

// resultIPs returns the pod addresses of a chain result.
func resultIPs(t testing.TB, res types.Result) []netip.Addr {
	t.Helper()
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, ip := range r.IPs {
		a, _ := netip.AddrFromSlice(ip.Address.IP)
		out = append(out, a.Unmap())
	}
	return out
}

func (h *harness) kubevsLog() string {
	b, _ := os.ReadFile(filepath.Join(h.dir, "kubevs.log"))
	return string(b)
}

func TestIntegrationRoundTripEveryVersion(t *testing.T) {
	for _, v := range []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			h := newHarness(t)
			h.serve()
			l := h.list(v, "")
			p := h.newPod("rt" + strings.ReplaceAll(v, ".", ""))
			res, err := h.add(l, p)
			if err != nil {
				t.Fatalf("ADD: %v\nlog:\n%s", err, h.kubevsLog())
			}
			if res.Version() != v {
				t.Errorf("result version %s, want %s", res.Version(), v)
			}
			reg, ok := h.store.Get(nodeapi.Attachment{ContainerID: p.id, IfName: "eth0"})
			if !ok {
				t.Fatalf("pod not registered; log:\n%s", h.kubevsLog())
			}
			links := h.hostLinks()
			if hp, ok := links[reg.HostIfName]; !ok || !hp {
				t.Errorf("host veth %q: present %v hairpin %v; all veths %v", reg.HostIfName, ok, hp, links)
			}
			if got, want := fmt.Sprint(reg.IPs), fmt.Sprint(resultIPs(t, res)); got != want {
				t.Errorf("registered IPs %s, want the result's %s", got, want)
			}
			if reg.PodNamespace != "default" || reg.PodName != "pod-"+p.id || reg.PodUID != "uid-"+p.id || reg.Netns != p.path {
				t.Errorf("registration %+v lacks the pod's identity", reg)
			}
			if v >= "0.4.0" {
				if err := h.check(l, p); err != nil {
					t.Errorf("CHECK: %v", err)
				}
			}
			if err := h.del(l, p.rt()); err != nil {
				t.Fatalf("DEL: %v", err)
			}
			if n := len(h.store.List()); n != 0 {
				t.Errorf("%d registrations left after DEL", n)
			}
			if links := h.hostLinks(); len(links) != 0 {
				t.Errorf("veths left after DEL: %v", links)
			}
			if ips := h.leasedIPs(); len(ips) != 0 {
				t.Errorf("IPs left after DEL: %v", ips)
			}
		})
	}
}

// TestIntegrationCheckDetectsDrift: CHECK sees a bridge port whose hairpin was turned
// off behind kubevs's back, and a registration the proxier lost.
func TestIntegrationCheckDetectsDrift(t *testing.T) {
	h := newHarness(t)
	h.serve()
	l := h.list("1.0.0", "")
	p := h.newPod("drift")
	if _, err := h.add(l, p); err != nil {
		t.Fatal(err)
	}
	reg, _ := h.store.Get(nodeapi.Attachment{ContainerID: p.id, IfName: "eth0"})
	setHairpin := func(on bool) error {
		return h.inHost(func() error {
			link, err := netlink.LinkByName(reg.HostIfName)
			if err != nil {
				return err
			}
			return netlink.LinkSetHairpin(link, on)
		})
	}
	if err := setHairpin(false); err != nil {
		t.Fatal(err)
	}
	if err := h.check(l, p); err == nil || !strings.Contains(err.Error(), "hairpin") {
		t.Errorf("CHECK with hairpin off = %v, want an error about hairpin", err)
	}
	if err := setHairpin(true); err != nil {
		t.Fatal(err)
	}
	if err := h.check(l, p); err != nil {
		t.Errorf("CHECK with hairpin restored: %v", err)
	}
	if _, err := h.store.Unregister(reg.Key()); err != nil {
		t.Fatal(err)
	}
	if err := h.check(l, p); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("CHECK without registration = %v, want an error about registration", err)
	}
	if err := h.del(l, p.rt()); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationDelIdempotent(t *testing.T) {
	h := newHarness(t)
	h.serve()
	l := h.list("1.0.0", "")
	p := h.newPod("idem")
	if _, err := h.add(l, p); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := h.del(l, p.rt()); err != nil {
			t.Fatalf("DEL #%d: %v", i, err)
		}
	}
	// No netns, no prevResult (nothing cached), proxier gone: as after a reboot.
	h.stop()
	if err := os.RemoveAll(filepath.Join(h.dir, "cache")); err != nil {
		t.Fatal(err)
	}
	rt := &libcni.RuntimeConf{ContainerID: "idem", IfName: "eth0"}
	for i := range 3 {
		if err := h.del(l, rt); err != nil {
			t.Fatalf("DEL after reboot #%d: %v", i, err)
		}
	}
	// kubevs alone, with no prevResult at all.
	single, err := libcni.NetworkPluginConfFromBytes(withName(t, h.list("1.0.0", "").Plugins[1].Bytes))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.inHost(func() error { return h.cni.DelNetwork(context.Background(), single, rt) }); err != nil {
		t.Fatalf("DEL of kubevs alone without prevResult: %v", err)
	}
	if n := len(h.store.List()); n != 0 {
		t.Errorf("%d registrations left", n)
	}
}

// withName adds the list-level name and cniVersion libcni would inject.
func withName(t testing.TB, b []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["name"], m["cniVersion"] = "kubevs-test", "1.0.0"
	out, _ := json.Marshal(m)
	return out
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
