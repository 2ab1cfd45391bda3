package sysctl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubevs/kubevs/internal/testenv"
)

func TestPath(t *testing.T) {
	tests := []struct {
		name, want string
		wantErr    bool
	}{
		{name: "net.ipv4.ip_forward", want: "net/ipv4/ip_forward"},
		{name: "net/ipv4/vs/conntrack", want: "net/ipv4/vs/conntrack"},
		{name: "net/ipv4/conf/eth0.100/rp_filter", want: "net/ipv4/conf/eth0.100/rp_filter"},
		{name: "net/ipv6/conf/all/forwarding", want: "net/ipv6/conf/all/forwarding"},
		{name: "net.ipv4.conf.kube-ipvs0.arp_ignore", want: "net/ipv4/conf/kube-ipvs0/arp_ignore"},
		{name: "", wantErr: true},
		{name: "net/../../etc/passwd", wantErr: true},
		{name: "net..ipv4", wantErr: true},
		{name: "/net/ipv4/ip_forward", wantErr: true},
		{name: "net/ipv4/", wantErr: true},
		{name: "net/./ipv4", wantErr: true},
		{name: "net.ipv4.IP_forward", wantErr: true},
		{name: "net ipv4", wantErr: true},
		{name: "net/ipv4\x00", wantErr: true},
	}
	for _, tt := range tests {
		got, err := Path(tt.name)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Path(%q) = %q, %v; want %q, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestGetSetFiles(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "net", "ipv4")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ip_forward"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewAt(root)
	if v, err := s.Get("net.ipv4.ip_forward"); err != nil || v != "0" {
		t.Fatalf("Get = %q, %v; want 0", v, err)
	}
	if err := s.Set("net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get("net/ipv4/ip_forward"); err != nil || v != "1" {
		t.Fatalf("after Set: %q, %v", v, err)
	}
	if _, err := s.Get("net.ipv4.vs.conntrack"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get absent: %v, want fs.ErrNotExist", err)
	}
	if err := s.Set("net.ipv4.vs.conntrack", "1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Set absent: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vs")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Set created a parameter: %v", err)
	}
	if err := s.Set("net/../x", "1"); err == nil {
		t.Errorf("Set accepted a name with ..")
	}
}

// TestProcSysInFreshNetns writes per-namespace parameters in a fresh network namespace and
// checks that the host's values are untouched.
func TestProcSysInFreshNetns(t *testing.T) {
	testenv.RequireRoot(t)
	s := New()
	params := []string{"net.ipv4.ip_forward", "net/ipv4/conf/all/arp_ignore", "net/ipv4/conf/lo/arp_announce"}
	hostBefore := map[string]string{}
	for _, p := range params {
		v, err := s.Get(p)
		if err != nil {
			t.Fatalf("host: %v", err)
		}
		hostBefore[p] = v
	}
	testenv.InNetns(t, func() {
		for i, p := range params {
			want := []string{"1", "1", "2"}[i]
			if err := s.Set(p, want); err != nil {
				t.Errorf("set %s: %v", p, err)
				continue
			}
			if got, err := s.Get(p); err != nil || got != want {
				t.Errorf("get %s = %q, %v; want %q", p, got, err, want)
			}
		}
		if err := s.Set("net.ipv4.no_such_parameter", "1"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("set absent parameter: %v, want fs.ErrNotExist", err)
		}
	})
	for _, p := range params {
		if v, err := s.Get(p); err != nil || v != hostBefore[p] {
			t.Errorf("host %s changed: %q, %v; was %q", p, v, err, hostBefore[p])
		}
	}
}

// TestIPVSParametersInVM sets the IPVS parameters the proxier needs; they exist only where
// ip_vs is loaded, in the test VM, and there per network namespace.
func TestIPVSParametersInVM(t *testing.T) {
	testenv.RequireVM(t)
	s := New()
	testenv.InNetns(t, func() {
		for _, p := range []struct{ name, value string }{
			{"net/ipv4/vs/conntrack", "1"},
			{"net.ipv4.vs.conn_reuse_mode", "0"},
			{"net/ipv4/vs/expire_nodest_conn", "1"},
		} {
			if err := s.Set(p.name, p.value); err != nil {
				t.Errorf("set %s: %v", p.name, err)
				continue
			}
			if got, err := s.Get(p.name); err != nil || got != p.value {
				t.Errorf("get %s = %q, %v; want %q", p.name, got, err, p.value)
			}
		}
	})
}
