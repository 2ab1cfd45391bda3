package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"

	"github.com/kubevs/kubevs/internal/testenv"
)

// TestBootGuest boots the real test VM on the host and runs this very test binary in it
// (TestGuestKernel below), with a writable share, and checks that the guest's exit code,
// output and files come back. It takes 20-40 s; CI runs it as part of `go test ./...`.
func TestBootGuest(t *testing.T) {
	if testenv.InVM() {
		t.Skip("already inside the test VM")
	}
	if testing.Short() && !testenv.Strict() {
		t.Skip("boots a VM (20-40 s); skipped in -short mode")
	}
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		if testenv.Strict() {
			t.Fatalf("qemu-system-x86_64 missing (run test/scripts/deps.sh): %v", err)
		}
		t.Skipf("qemu-system-x86_64 missing (run test/scripts/deps.sh): %v", err)
	}
	_, ctx := ktesting.NewTestContext(t)
	root, err := DefaultCacheRoot()
	if err != nil {
		t.Fatal(err)
	}
	img, err := Prepare(ctx, root)
	if err != nil {
		t.Fatalf("prepare image: %v", err)
	}
	t.Logf("booting %s with %s", img.Vmlinuz, img.Initrd)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("command, exit code, output and share", func(t *testing.T) {
		share := t.TempDir()
		var out bytes.Buffer
		res, err := Run(ctx, Options{
			Image: img,
			// The guest test's verdict goes to the share; the command itself fails with 3.
			Command: []string{"sh", "-c", `"$0" -test.run '^TestGuestKernel$' -test.v; echo $? > /results/guest.rc; exit 3`, self},
			Env:     []string{"KUBEVS_STRICT=1"},
			Shares:  []Share{{HostDir: share, GuestDir: "/results"}},
			Timeout: 10 * time.Minute,
			Stdout:  &out,
		})
		if err != nil {
			t.Fatalf("run: %v\noutput:\n%s", err, out.String())
		}
		t.Logf("guest ready after %s (guest uptime %ss), command done after %s", res.Boot, res.GuestUptime, res.Total)
		if res.ExitCode != 3 {
			t.Errorf("exit code = %d, want 3 (the guest command's)", res.ExitCode)
		}
		rc, err := os.ReadFile(filepath.Join(share, "guest.rc"))
		if err != nil {
			t.Fatalf("read the guest's result from the share: %v", err)
		}
		if got := strings.TrimSpace(string(rc)); got != "0" {
			t.Errorf("guest test exit code = %s, want 0; output:\n%s", got, out.String())
		}
		if !strings.Contains(out.String(), "--- PASS: TestGuestKernel") {
			t.Errorf("guest output lacks the guest test's PASS line:\n%s", out.String())
		}
	})

	t.Run("user-mode network reaches the host's loopback", func(t *testing.T) {
		// A server on the host's 127.0.0.1 only, as the benchmark's API server is in its
		// own network namespace: the guest reaches it at UserNetHost.
		const token = "kubevs-usernet-ok"
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, token)
		}), ReadHeaderTimeout: time.Minute}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		port := ln.Addr().(*net.TCPAddr).Port
		var out bytes.Buffer
		res, err := Run(ctx, Options{
			Image: img, UserNet: true, MemoryMiB: 512, CPUs: 1, Timeout: 10 * time.Minute, Stdout: &out,
			Command: []string{"sh", "-c", fmt.Sprintf(`set -e
ip link set eth0 up
ip addr add %s dev eth0
curl -sS --max-time 120 http://%s:%d/`, UserNetGuestCIDR, UserNetHost, port)},
		})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("run: exit %d, %v; output:\n%s", res.ExitCode, err, out.String())
		}
		if !strings.Contains(out.String(), token) {
			t.Errorf("the guest did not get the host's answer over the user-mode network; output:\n%s", out.String())
		}
	})

	t.Run("a link and the user-mode network are refused together", func(t *testing.T) {
		_, err := Run(ctx, Options{Image: img, Command: []string{"true"}, UserNet: true,
			Link: &Link{Local: netip.MustParseAddrPort("127.0.0.1:7001"), Peer: netip.MustParseAddrPort("127.0.0.1:7002")}})
		if err == nil || !strings.Contains(err.Error(), "both be eth0") {
			t.Fatalf("run error = %v, want a refusal", err)
		}
	})

	t.Run("timeout kills the guest", func(t *testing.T) {
		start := time.Now()
		_, err := Run(ctx, Options{Image: img, Command: []string{"sleep", "600"}, Timeout: 3 * time.Second})
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("run error = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("Run returned %s after its 3 s timeout", d)
		}
	})

	t.Run("qemu failure is an error", func(t *testing.T) {
		bad := &Image{Vmlinuz: filepath.Join(t.TempDir(), "missing"), Initrd: img.Initrd}
		_, err := Run(ctx, Options{Image: bad, Command: []string{"true"}, Timeout: time.Minute})
		if err == nil || !strings.Contains(err.Error(), "guest stopped before the command ended") {
			t.Fatalf("run error = %v, want a qemu failure", err)
		}
	})
}

// TestGuestKernel runs inside the test VM only: the guest's kernel has what the host's lacks.
// Each step runs in a fresh network namespace (unshare), so it leaves nothing behind for
// the other tests that share the guest.
func TestGuestKernel(t *testing.T) {
	testenv.RequireVM(t)
	steps := []struct {
		name, script, want string
	}{
		{"ipvs virtual server", "ipvsadm -A -t 10.0.0.1:80 -s rr && ipvsadm -Ln", "TCP  10.0.0.1:80 rr"},
		{"dummy link", "ip link add kube-ipvs0 type dummy && ip addr add 10.96.0.1/32 dev kube-ipvs0 && ip -o addr show kube-ipvs0", "inet 10.96.0.1/32"},
		{"ipset hash:ip,port,ip", "ipset create X hash:ip,port,ip && ipset add X 10.244.0.2,tcp:8080,10.244.0.2 && ipset list X", "10.244.0.2,tcp:8080,10.244.0.2"},
		{"iptables with set match and masquerade", "ipset create KUBE-LOOP-BACK hash:ip,port,ip && iptables -t nat -N KUBE-POSTROUTING && " +
			"iptables -t nat -A KUBE-POSTROUTING -m set --match-set KUBE-LOOP-BACK dst,dst,src -m comment --comment hairpin -j MASQUERADE && " +
			"iptables -t nat -S KUBE-POSTROUTING", "-j MASQUERADE"},
		{"conntrack", "conntrack -L 2>&1", "flow entries have been shown"},
		{"no stray dummy0", "ip -o link show; true", "lo:"},
	}
	for _, s := range []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"} {
		steps = append(steps, struct{ name, script, want string }{
			"scheduler " + s, "ipvsadm -A -t 10.0.0.2:80 -s " + s + " && ipvsadm -Ln", "10.0.0.2:80 " + s,
		})
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out, err := exec.CommandContext(context.Background(), "unshare", "--net", "sh", "-c", st.script).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", st.script, err, out)
			}
			if !strings.Contains(string(out), st.want) {
				t.Errorf("%s: output lacks %q:\n%s", st.script, st.want, out)
			}
			if strings.Contains(string(out), "dummy0") {
				t.Errorf("found dummy0, which the dummy module should not create (numdummies=0):\n%s", out)
			}
		})
	}
}
