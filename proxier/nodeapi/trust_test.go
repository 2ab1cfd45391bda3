package nodeapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubevs/kubevs/internal/testenv"
)

func TestHandlerRejectsForeignIPs(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer("/unused", store, nil)
	podCIDR := netip.MustParsePrefix("10.244.1.0/24")
	srv.SetIPValidator(func(ip netip.Addr) error {
		if !podCIDR.Contains(ip.Unmap()) {
			return fmt.Errorf("%s: outside the node's podCIDRs %s", ip, podCIDR)
		}
		return nil
	})
	h := srv.Handler()
	tests := []struct {
		ip, wantBody string
		wantCode     int
	}{
		{"10.244.1.7", "", 204},
		{"10.244.2.7", "ips[0]: 10.244.2.7: outside the node's podCIDRs", 400},
		{"10.96.0.1", "outside the node's podCIDRs", 400},
		{"127.0.0.1", "loopback", 400},
		{"::1", "loopback", 400},
		{"169.254.169.254", "link-local", 400},
		{"fe80::1", "link-local", 400},
		{"224.0.0.1", "multicast", 400},
		{"ff02::1", "multicast", 400},
		{"0.0.0.0", "unspecified", 400},
		{"::", "unspecified", 400},
		{"255.255.255.255", "broadcast", 400},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			body := `{"containerID":"c1","ifName":"eth0","ips":["` + tt.ip + `"]}`
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/register", strings.NewReader(body)))
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("register %s = %d %q; want %d containing %q", tt.ip, rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
	if got := store.List(); len(got) != 1 || got[0].IPs[0] != netip.MustParseAddr("10.244.1.7") {
		t.Errorf("registrations %v, want only the pod-CIDR one", got)
	}
}

func TestStoreCapsRegistrations(t *testing.T) {
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.max = 3
	for i := range s.max {
		if err := s.Register(reg(fmt.Sprintf("c%d", i), "eth0", fmt.Sprintf("10.244.0.%d", i+2))); err != nil {
			t.Fatal(err)
		}
	}
	err = s.Register(reg("over", "eth0", "10.244.0.99"))
	if !errors.Is(err, ErrTooManyRegistrations) || !strings.Contains(err.Error(), "over/eth0") {
		t.Fatalf("register past the cap: %v, want ErrTooManyRegistrations naming over/eth0", err)
	}
	// Replacing an existing registration is not a new one.
	if err := s.Register(reg("c0", "eth0", "10.244.0.50")); err != nil {
		t.Fatalf("re-register at the cap: %v", err)
	}
	if _, err := s.Unregister(Attachment{ContainerID: "c1", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(reg("over", "eth0", "10.244.0.99")); err != nil {
		t.Fatalf("register after an unregister freed a slot: %v", err)
	}
	if n := len(s.List()); n != s.max {
		t.Errorf("%d registrations, want %d", n, s.max)
	}

	// Through the API: 429 with the reason.
	rec := httptest.NewRecorder()
	NewServer("/unused", s, nil).Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/register",
		strings.NewReader(`{"containerID":"flood","ifName":"eth0","ips":["10.244.0.100"]}`)))
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "too many registrations") {
		t.Errorf("register past the cap over the API = %d %q; want 429 too many registrations", rec.Code, rec.Body.String())
	}
}

func TestListenRefusesUnsafeDirectory(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		prepare func(dir string) error
		wantErr string
	}{
		{"owned by another user", func(dir string) error { return os.Chown(dir, 65534, 65534) }, "owned by uid 65534, not root"},
		{"world writable", func(dir string) error { return os.Chmod(dir, 0o777) }, "mode 0777 is group or world writable"},
		{"group writable", func(dir string) error { return os.Chmod(dir, 0o770) }, "mode 0770 is group or world writable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testenv.RequireRoot(t)
			dir := filepath.Join(t.TempDir(), "run")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := tt.prepare(dir); err != nil {
				t.Fatal(err)
			}
			err := NewServer(filepath.Join(dir, "proxier.sock"), store, nil).Listen()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("Listen = %v; want an error naming %s and containing %q", err, dir, tt.wantErr)
			}
		})
	}
}

// helperEnv makes the test binary a node API client (see TestNodeAPIPeerHelper).
const helperEnv = "KUBEVS_NODEAPI_PEER_HELPER_SOCKET"

// TestNodeAPIPeerHelper is not a test: run as a subprocess with helperEnv set, it sends one
// status request on that socket and prints the status line and body, then how long the
// server took.
func TestNodeAPIPeerHelper(t *testing.T) {
	sock := os.Getenv(helperEnv)
	if sock == "" {
		t.Skip("helper process only")
	}
	start := time.Now()
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(2)
	}
	_, _ = io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: kubevs\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		fmt.Println("read:", err)
		os.Exit(2)
	}
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\nanswered in %s\n", resp.StatusCode, b, time.Since(start))
	os.Exit(0)
}

// TestServerRefusesNonRootCaller: even when the socket's modes let another user connect,
// the server answers only uid 0. The caller is this test binary run as uid 65534.
func TestServerRefusesNonRootCaller(t *testing.T) {
	testenv.RequireRoot(t)
	base, err := os.MkdirTemp("", "kubevs-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	// A copy of this binary that uid 65534 can run, beside a socket it can reach.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "nodeapi.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	sock, _ := startServer(t, base, func() Status { return Status{Ready: true, NodeName: "node-a"} })
	// The misconfiguration the peer check is for: the modes opened up after Listen.
	if err := os.Chmod(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	run := func(cred *syscall.Credential) string {
		cmd := exec.CommandContext(context.Background(), bin, "-test.run=^TestNodeAPIPeerHelper$")
		cmd.Env = []string{helperEnv + "=" + sock}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v: %s", err, out)
		}
		return string(out)
	}
	if out := run(&syscall.Credential{Uid: 65534, Gid: 65534}); !strings.HasPrefix(out, "403 ") || !strings.Contains(out, "caller uid 65534") {
		t.Errorf("uid 65534 got %q; want 403 naming the uid", out)
	}
	if out := run(nil); !strings.HasPrefix(out, "200 ") || !strings.Contains(out, `"nodeName":"node-a"`) {
		t.Errorf("root got %q; want 200 with the status", out)
	}
}
