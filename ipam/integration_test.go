package ipam

// An integration test of kubevs-ipam as a runtime uses it: libcni runs the reference bridge
// plugin from the standalone conflist kubevs-install writes, and the bridge plugin runs the
// built kubevs-ipam binary, for pods that are fresh network namespaces. Runs as root on the
// host (netns, veth and bridge are all the host kernel needs).

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/conflist"
	"github.com/kubevs/kubevs/internal/testenv"
)

// buildPlugins builds kubevs-ipam and the reference bridge plugin into one directory.
func buildPlugins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range []struct{ dir, pkg string }{
		{"..", "./ipam/cmd/kubevs-ipam"},
		{"../test/tools/cni", "github.com/containernetworking/plugins/plugins/main/bridge"},
	} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", dir+"/", b.pkg)
		cmd.Dir = b.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return dir
}

func TestBridgeWithKubevsIPAM(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds plugins")
	}
	bin := buildPlugins(t)
	work := t.TempDir()
	node := testenv.NewNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	l, err := conflist.Standalone(conflist.StandaloneOptions{IPAM: conflist.IPAMConf{
		DataDir: filepath.Join(work, "ipam"), NodeAPISocket: filepath.Join(work, "absent.sock"),
		NodeName: "node-1", Ranges: []string{"10.250.0.0/24"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l.Plugins = l.Plugins[:1] // bridge + kubevs-ipam only: portmap and kubevs are not under test
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{bin}, filepath.Join(work, "cache"), nil)
	inNode := func(fn func() error) error { return node.Do(func(ns.NetNS) error { return fn() }) }

	pods := map[string]ns.NetNS{}
	// The plugins open CNI_NETNS by path. NetNS.Path() of testenv's namespaces names the
	// creating thread's /proc/.../ns/net, which follows that thread back to its original
	// namespace; the namespace's own file descriptor, seen through /proc/<pid>/fd, does not.
	rt := func(id string) *libcni.RuntimeConf {
		return &libcni.RuntimeConf{ContainerID: id, NetNS: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), pods[id].Fd()), IfName: "eth0"}
	}
	add := func(id string) *current.Result {
		t.Helper()
		pods[id] = testenv.NewNetns(t)
		var res types.Result
		if err := inNode(func() (err error) { res, err = cni.AddNetworkList(ctx, list, rt(id)); return err }); err != nil {
			t.Fatalf("ADD %s: %v", id, err)
		}
		r, err := current.NewResultFromResult(res)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	if err := inNode(func() error { return cni.GetStatusNetworkList(ctx, list) }); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
	r1 := add("pod-1")
	r2 := add("pod-2")
	got := []string{r1.IPs[0].Address.String(), r1.IPs[0].Gateway.String(), r2.IPs[0].Address.String()}
	if diff := cmp.Diff([]string{"10.250.0.2/24", "10.250.0.1", "10.250.0.3/24"}, got); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}

	// The bridge holds the gateway, the pod its address and a default route through it.
	if err := inNode(func() error {
		br, err := netlink.LinkByName(conflist.DefaultBridge)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
		if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != "10.250.0.1/24" {
			return fmt.Errorf("bridge addresses %v, %v; want 10.250.0.1/24", addrs, err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if err := pods["pod-1"].Do(func(ns.NetNS) error {
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.250.0.1" {
				return nil
			}
		}
		return fmt.Errorf("no default route via 10.250.0.1 in %v", routes)
	}); err != nil {
		t.Error(err)
	}

	// Traffic crosses the real bridge: the node connects to a listener in pod-1.
	var ln net.Listener
	if err := pods["pod-1"].Do(func(ns.NetNS) (err error) { ln, err = net.Listen("tcp", "10.250.0.2:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_, _ = c.Write([]byte("hello"))
			c.Close()
		}
	}()
	if err := inNode(func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 5)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err != nil || string(buf) != "hello" {
			return fmt.Errorf("read %q: %v", buf, err)
		}
		return nil
	}); err != nil {
		t.Errorf("node to pod over the bridge: %v", err)
	}

	// CHECK, DEL twice, GC.
	if err := inNode(func() error { return cni.CheckNetworkList(ctx, list, rt("pod-1")) }); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	for i := range 2 {
		if err := inNode(func() error { return cni.DelNetworkList(ctx, list, rt("pod-1")) }); err != nil {
			t.Errorf("DEL #%d: %v", i+1, err)
		}
	}
	store := filepath.Join(work, "ipam", l.Name)
	if _, err := os.Stat(filepath.Join(store, "10.250.0.2")); !os.IsNotExist(err) {
		t.Errorf("DEL left the reservation of 10.250.0.2: %v", err)
	}
	r3 := add("pod-3")
	if a := r3.IPs[0].Address.String(); a != "10.250.0.4/24" {
		t.Errorf("pod-3 got %s, want 10.250.0.4/24 (round robin: not the address just freed)", a)
	}
	if err := inNode(func() error {
		return cni.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: "pod-3", IfName: "eth0"}}})
	}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	var left []string
	entries, _ := os.ReadDir(store)
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			b, _ := os.ReadFile(filepath.Join(store, e.Name()))
			left = append(left, e.Name()+" "+string(b))
		}
	}
	if diff := cmp.Diff([]string{"10.250.0.4 pod-3\neth0\n"}, left); diff != "" {
		t.Errorf("reservations after GC (-want +got):\n%s", diff)
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(r1, "", "  ")
		t.Logf("pod-1 result:\n%s", b)
	}
}
