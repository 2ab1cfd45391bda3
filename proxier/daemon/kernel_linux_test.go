package daemon

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link"
)

const childEnv = "KUBEVS_DAEMON_NETNS_CHILD"

// TestDaemonOnRealKernel runs TestDaemonInFreshNetns in a child process that unshare(1)
// puts in a fresh network namespace of the test VM: the daemon's goroutines, netlink
// sockets, iptables-restore children and /proc/sys writes all land in it, and everything
// it programmed goes away with it.
func TestDaemonOnRealKernel(t *testing.T) {
	testenv.RequireVM(t)
	cmd := exec.Command("unshare", "--net", os.Args[0], "-test.run=^TestDaemonInFreshNetns$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child output:\n%s", out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestDaemonInFreshNetns") {
		t.Fatalf("child did not pass")
	}
}

// ipvsText prints the IPVS table sorted.
func ipvsText(t *testing.T, v ipvs.Interface) string {
	t.Helper()
	text, err := ipvstest.Text(v)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func TestDaemonInFreshNetns(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("runs only as the child of TestDaemonOnRealKernel, in a fresh network namespace")
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	k, err := NewKernel()
	if err != nil {
		t.Fatal(err)
	}
	defer k.IPVS.(io.Closer).Close()
	defer k.Link.(io.Closer).Close()
	objs := []any{service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5", "10.244.2.6")}
	cfg := testConfig(t)
	cfg.ClusterCIDRs = nil

	h := startWith(t, &k, cfg, objs...)
	want := "TCP:10.96.0.10:80 rr\n  -> 10.244.2.5:8080 weight 1\n  -> 10.244.2.6:8080 weight 1\n"
	eventually(t, "the virtual server in the kernel", func() bool { return ipvsText(t, k.IPVS) == want })
	eventually(t, "readiness", h.d.Ready)
	addrs, err := k.Link.Addresses(link.DefaultDummy)
	if err != nil || len(addrs) != 1 || addrs[0].String() != "10.96.0.10" {
		t.Errorf("%s addresses = %v, %v; want [10.96.0.10]", link.DefaultDummy, addrs, err)
	}
	h.stop()

	// Restart: the first sync adopts what is there and writes nothing to IPVS.
	counted := ipvstest.NewRecorder(k.IPVS)
	k2 := k
	k2.IPVS = counted
	h2 := startWith(t, &k2, cfg, objs...)
	eventually(t, "readiness after restart", h2.d.Ready)
	h2.stop()
	if len(counted.Ops()) != 0 {
		t.Errorf("restart wrote to IPVS: %q", counted.Ops())
	}
	if got := ipvsText(t, k.IPVS); got != want {
		t.Errorf("IPVS after restart:\n%s\nwant:\n%s", got, want)
	}

	if err := Cleanup(h.ctx, cfg, &k); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if got := ipvsText(t, k.IPVS); got != "" {
		t.Errorf("IPVS after cleanup:\n%s", got)
	}
	if _, err := k.Link.Addresses(link.DefaultDummy); err == nil {
		t.Errorf("%s still exists after cleanup", link.DefaultDummy)
	}
}
