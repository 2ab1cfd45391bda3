package plugin

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// env is a plugin wired to fake links and a real in-process node API server.
type env struct {
	t        *testing.T
	p        *Plugin
	links    *fakeLinks
	sock     string
	store    *nodeapi.Store
	ready    atomic.Bool
	launches atomic.Int32
	log      bytes.Buffer
	stop     func()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, links: newFakeLinks(), sock: filepath.Join(dir, "run", "p.sock")}
	store, err := nodeapi.NewStore(filepath.Join(dir, "regs"))
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	e.p = New()
	e.p.Links = e.links
	e.p.Stderr = &e.log
	e.p.Launch = func(context.Context, *Config, string) error { e.launches.Add(1); return nil }
	return e
}

// serve starts the node API server.
func (e *env) serve() {
	e.t.Helper()
	srv := nodeapi.NewServer(e.sock, e.store, func() nodeapi.Status { return nodeapi.Status{Ready: e.ready.Load(), Message: "syncing"} })
	if err := srv.Listen(); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	e.stop = func() { cancel(); <-done }
	e.t.Cleanup(e.stop)
}

func (e *env) conf(version, extra string) *Config {
	e.t.Helper()
	c, err := ParseConfig(confWith(version, `,"socket":"`+e.sock+`","timeouts":{"api":"200ms","launch":"500ms"}`+extra))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func cmdArgs(id, netns string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: id, Netns: netns, IfName: "eth0", Args: "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_UID=u-1", Path: "/opt/cni/bin"}
}

func code(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return types.ErrInternal
}

func TestAddBridgePort(t *testing.T) {
	e := newEnv(t)
	e.serve()
	e.links.addPod("/ns/p1", PodLink{IfName: "eth0", HostIfName: "veth1", Bridge: "cni0", IPs: []netip.Addr{netip.MustParseAddr("10.9.9.9")}})
	cfg := e.conf("1.0.0", `,"prevResult":`+prevResults["1.0.0"])
	res, err := e.p.Add(context.Background(), cfg, cmdArgs("c1", "/ns/p1"))
	if err != nil {
		t.Fatal(err)
	}
	if res != cfg.PrevResult {
		t.Errorf("ADD did not return prevResult unchanged")
	}
	if diff := cmp.Diff([]string{"veth1"}, e.links.hairpin); diff != "" {
		t.Errorf("hairpin calls (-want +got):\n%s", diff)
	}
	want := []nodeapi.Registration{{
		ContainerID: "c1", IfName: "eth0", Netns: "/ns/p1", PodNamespace: "ns1", PodName: "web", PodUID: "u-1",
		IPs: []netip.Addr{netip.MustParseAddr("10.244.0.5")}, HostIfName: "veth1",
	}}
	if diff := cmp.Diff(want, e.store.List(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("registrations (-want +got):\n%s", diff)
	}
	// ADD again (a runtime retry): hairpin set again (idempotent; one request instead of a
	// read that dumps every bridge port); still one registration.
	if _, err := e.p.Add(context.Background(), cfg, cmdArgs("c1", "/ns/p1")); err != nil {
		t.Fatal(err)
	}
	if len(e.links.hairpin) != 2 || len(e.store.List()) != 1 {
		t.Errorf("repeated ADD: hairpin calls %v, registrations %d", e.links.hairpin, len(e.store.List()))
	}
	if err := e.p.Check(context.Background(), cfg, cmdArgs("c1", "/ns/p1")); err != nil {
		t.Errorf("CHECK after ADD: %v", err)
	}
}

func TestAddRoutedLinkAndKernelIPs(t *testing.T) {
	e := newEnv(t)
	e.serve()
	e.links.addPod("/ns/p1", PodLink{IfName: "eth0", HostIfName: "veth1", IPs: []netip.Addr{netip.MustParseAddr("10.9.9.9")}})
	// A prevResult whose IPs name no sandbox interface called eth0: the kernel's IPs are used.
	cfg := e.conf("1.0.0", `,"prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"other","sandbox":"/ns/p1"}],"ips":[{"interface":0,"address":"10.1.1.1/24"}]}`)
	if _, err := e.p.Add(context.Background(), cfg, cmdArgs("c1", "/ns/p1")); err != nil {
		t.Fatal(err)
	}
	if len(e.links.hairpin) != 0 {
		t.Errorf("hairpin set on a routed link: %v", e.links.hairpin)
	}
	got, ok := e.store.Get(nodeapi.Attachment{ContainerID: "c1", IfName: "eth0"})
	if !ok || !cmp.Equal(got.IPs, []netip.Addr{netip.MustParseAddr("10.9.9.9")}, cmpopts.EquateComparable(netip.Addr{})) {
		t.Errorf("registration = %+v, %v; want the kernel's IP", got, ok)
	}
}

// TestAddBadInputLeavesNothing: every invalid input fails with its code before any change.
func TestAddBadInputLeavesNothing(t *testing.T) {
	tests := []struct {
		name     string
		args     *skel.CmdArgs
		extra    string
		wantCode uint
	}{
		{"no prevResult", cmdArgs("c1", "/ns/p1"), "", types.ErrInvalidNetworkConfig},
		{"bad container ID", cmdArgs("../c1", "/ns/p1"), `,"prevResult":` + prevResults["1.0.0"], types.ErrInvalidEnvironmentVariables},
		{"bad ifname", &skel.CmdArgs{ContainerID: "c1", Netns: "/ns/p1", IfName: "a/b"}, `,"prevResult":` + prevResults["1.0.0"], types.ErrInvalidEnvironmentVariables},
		{"no netns", cmdArgs("c1", ""), `,"prevResult":` + prevResults["1.0.0"], types.ErrInvalidEnvironmentVariables},
		{"not a netns", cmdArgs("c1", "/ns/none"), `,"prevResult":` + prevResults["1.0.0"], types.ErrInvalidNetNS},
		{"bad CNI_ARGS", &skel.CmdArgs{ContainerID: "c1", Netns: "/ns/p1", IfName: "eth0", Args: "K8S_POD_NAME"}, `,"prevResult":` + prevResults["1.0.0"], types.ErrInvalidEnvironmentVariables},
		{"no interface", &skel.CmdArgs{ContainerID: "c1", Netns: "/ns/p1", IfName: "eth9"}, `,"prevResult":` + prevResults["1.0.0"], types.ErrInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.serve()
			e.links.addPod("/ns/p1", PodLink{IfName: "eth0", HostIfName: "veth1", Bridge: "cni0"})
			_, err := e.p.Add(context.Background(), e.conf("1.0.0", tt.extra), tt.args)
			if err == nil || code(err) != tt.wantCode {
				t.Fatalf("ADD = %v (code %d), want code %d", err, code(err), tt.wantCode)
			}
			if len(e.links.hairpin) != 0 || len(e.store.List()) != 0 {
				t.Errorf("partial state: hairpin %v, registrations %v", e.links.hairpin, e.store.List())
			}
		})
	}
}

func TestAddProxierAbsentOrSilent(t *testing.T) {
	t.Run("absent, launch off", func(t *testing.T) {
		e := newEnv(t)
		e.links.addPod("/ns/p1", PodLink{IfName: "eth0", HostIfName: "veth1", Bridge: "cni0"})
		start := time.Now()
		if _, err := e.p.Add(context.Background(), e.conf("1.0.0", `,"prevResult":`+prevResults["1.0.0"]), cmdArgs("c1", "/ns/p1")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("ADD took %v with no proxier and launch off", d)
		}
		if len(e.links.hairpin) != 1 || e.launches.Load() != 0 {
			t.Errorf("hairpin %v launches %d; want hairpin set and no launch", e.links.hairpin, e.launches.Load())
		}
	})
	t.Run("silent", func(t *testing.T) {
		e := newEnv(t)
		e.links.addPod("/ns/p1", PodLink{IfName: "eth0", HostIfName: "veth1", Bridge: "cni0"})
		if err := mkdirSocketDir(e.sock); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("unix", e.sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		start := time.Now()
		// Launch is on, but something listens: a slow proxier is waited for, never relaunched.
		if _, err := e.p.Add(context.Background(), e.conf("1.0.0", `,"launch":{"enabled":true},"prevResult":`+prevResults["1.0.0"]), cmdArgs("c1", "/ns/p1")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("ADD took %v against a silent proxier, want about the 200ms API timeout", d)
		}
		if e.launches.Load() != 0 || len(e.links.hairpin) != 1 {
			t.Errorf("launches %d, hairpin %v; want no launch and hairpin set", e.launches.Load(), e.links.hairpin)
		}
	})
	t.Run("absent, launch on", func(t *testing.T) {
		e := newEnv(t)
		e.links.addPod("/ns/p1", PodLink{IfName: "eth0", HostIfName: "veth1", Bridge: "cni0"})
		e.p.Launch = func(context.Context, *Config, string) error {
			e.launches.Add(1)
			e.serve()
			return nil
		}
		if _, err := e.p.Add(context.Background(), e.conf("1.0.0", `,"launch":{"enabled":true},"prevResult":`+prevResults["1.0.0"]), cmdArgs("c1", "/ns/p1")); err != nil {
			t.Fatal(err)
		}
		if e.launches.Load() != 1 || len(e.store.List()) != 1 {
			t.Errorf("launches %d, registrations %d; want 1 and 1", e.launches.Load(), len(e.store.List()))
		}
	})
}

func TestDelIdempotent(t *testing.T) {
	e := newEnv(t)
	e.serve()
	if err := e.store.Register(nodeapi.Registration{ContainerID: "c1", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	cfg := e.conf("1.0.0", "")
	for i := range 3 { // no netns, no prevResult, thrice
		if err := e.p.Del(context.Background(), cfg, &skel.CmdArgs{ContainerID: "c1", IfName: "eth0"}); err != nil {
			t.Fatalf("DEL #%d: %v", i, err)
		}
	}
	if n := len(e.store.List()); n != 0 {
		t.Errorf("registrations after DEL = %d", n)
	}
	e.stop() // after a reboot: no proxier at all
	if err := e.p.Del(context.Background(), cfg, cmdArgs("c1", "/gone")); err != nil {
		t.Errorf("DEL with no proxier: %v", err)
	}
	if err := e.p.Del(context.Background(), cfg, &skel.CmdArgs{ContainerID: "", IfName: "eth0"}); code(err) != types.ErrInvalidEnvironmentVariables {
		t.Errorf("DEL with no container ID = %v, want code 4", err)
	}
	if e.launches.Load() != 0 {
		t.Errorf("DEL launched the proxier")
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	e.serve()
	e.links.addPod("/ns/p1", PodLink{IfName: "eth0", HostIfName: "veth1", Bridge: "cni0"})
	cfg := e.conf("1.0.0", `,"prevResult":`+prevResults["1.0.0"])
	if err := e.p.Check(context.Background(), cfg, cmdArgs("c1", "/ns/p1")); err == nil {
		t.Error("CHECK passed with hairpin off")
	}
	if err := e.links.SetHairpin("veth1"); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Check(context.Background(), cfg, cmdArgs("c1", "/ns/p1")); err == nil {
		t.Error("CHECK passed with no registration")
	}
	if err := e.store.Register(nodeapi.Registration{ContainerID: "c1", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Check(context.Background(), cfg, cmdArgs("c1", "/ns/p1")); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := e.p.Check(context.Background(), e.conf("1.0.0", ""), cmdArgs("c1", "/ns/p1")); code(err) != types.ErrInvalidNetworkConfig {
		t.Errorf("CHECK without prevResult = %v, want code 7", err)
	}
	e.stop()
	if err := e.p.Check(context.Background(), cfg, cmdArgs("c1", "/ns/p1")); code(err) != types.ErrTryAgainLater {
		t.Errorf("CHECK with no proxier = %v, want code 11", err)
	}
}

func TestGC(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"keep", "stale1", "stale2"} {
		if err := e.store.Register(nodeapi.Registration{ContainerID: id, IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := e.conf("1.1.0", `,"cni.dev/valid-attachments":[{"containerID":"keep","ifname":"eth0"}]`)
	if err := e.p.GC(context.Background(), cfg, &skel.CmdArgs{}); err != nil {
		t.Errorf("GC with no proxier: %v", err)
	}
	e.serve()
	if err := e.p.GC(context.Background(), cfg, &skel.CmdArgs{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]nodeapi.Registration{{ContainerID: "keep", IfName: "eth0"}}, e.store.List()); diff != "" {
		t.Errorf("after GC (-want +got):\n%s", diff)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	cfg := e.conf("1.1.0", `,"launch":{"enabled":true}`)
	if err := e.p.Status(context.Background(), cfg, &skel.CmdArgs{}); code(err) != ErrPluginNotAvailable {
		t.Errorf("STATUS with no proxier = %v, want code 50", err)
	}
	if e.launches.Load() != 1 {
		t.Errorf("STATUS with launch on made %d launches, want 1", e.launches.Load())
	}
	e.serve()
	if err := e.p.Status(context.Background(), cfg, &skel.CmdArgs{}); code(err) != ErrPluginNotAvailable {
		t.Errorf("STATUS with an unsynced proxier = %v, want code 50", err)
	}
	e.ready.Store(true)
	if err := e.p.Status(context.Background(), cfg, &skel.CmdArgs{}); err != nil {
		t.Errorf("STATUS with a ready proxier: %v", err)
	}
}

// A proxier that listens but does not answer in time: STATUS reports the network not
// available until that proxier has been ready once (its ready mark), then available, so a
// starved node stays Ready; a restarted proxier does not inherit the mark.
func TestStatusOfASlowProxier(t *testing.T) {
	e := newEnv(t)
	cfg := e.conf("1.1.0", "")
	// start serves a proxier that answers /v1/status only once its gate closes.
	start := func() (srv *nodeapi.Server, stop func()) {
		gate := make(chan struct{})
		srv = nodeapi.NewServer(e.sock, e.store, func() nodeapi.Status { <-gate; return nodeapi.Status{Ready: true} })
		if err := srv.Listen(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = srv.Serve(ctx); close(done) }()
		return srv, func() { close(gate); cancel(); <-done }
	}
	srv, stop := start()
	if err := e.p.Status(context.Background(), cfg, &skel.CmdArgs{}); code(err) != ErrPluginNotAvailable {
		t.Errorf("STATUS of a slow proxier never ready = %v, want code 50", err)
	}
	if err := srv.MarkReady(); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Status(context.Background(), cfg, &skel.CmdArgs{}); err != nil {
		t.Errorf("STATUS of a slow proxier that has been ready: %v, want available", err)
	}

	// A new proxier on the same socket path (a restart): its socket is a new one.
	stop()
	_, stop = start()
	t.Cleanup(stop)
	if err := e.p.Status(context.Background(), cfg, &skel.CmdArgs{}); code(err) != ErrPluginNotAvailable {
		t.Errorf("STATUS of a new slow proxier with the old one's mark = %v, want code 50", err)
	}
}
