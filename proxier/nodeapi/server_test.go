package nodeapi

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// startServer runs a server on dir/run/proxier.sock with a store in dir/regs until the test
// ends, and returns its socket path and store.
func startServer(t *testing.T, dir string, status func() Status) (string, *Store) {
	t.Helper()
	store, err := NewStore(filepath.Join(dir, "regs"))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "proxier.sock")
	srv := NewServer(sock, store, status)
	if err := srv.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return sock, store
}

func TestServerSocketModes(t *testing.T) {
	dir := t.TempDir()
	sock, _ := startServer(t, dir, nil)
	for path, want := range map[string]os.FileMode{
		filepath.Dir(sock): os.ModeDir | 0o700,
		sock:               os.ModeSocket | 0o600,
	} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (os.ModeType | os.ModePerm); got != want {
			t.Errorf("mode of %s = %v, want %v", path, got, want)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(sock), ".*.tmp"))
	if len(leftovers) != 0 {
		t.Errorf("temporary sockets left behind: %v", leftovers)
	}
}

func TestServerClientRoundTrip(t *testing.T) {
	var ready atomic.Bool
	status := func() Status {
		return Status{Ready: ready.Load(), NodeName: "node-a", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("fd00:1::/64")}}
	}
	sock, store := startServer(t, t.TempDir(), status)
	c := NewClient(sock)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(status(), st, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	ready.Store(true)
	if st, err := c.Status(ctx); err != nil || !st.Ready {
		t.Errorf("status = %+v, %v; want ready", st, err)
	}

	r := reg("c1", "eth0", "10.244.1.7")
	r.HostIfName = "veth1234"
	if err := c.Register(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, r.Key())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
	if _, err := c.Get(ctx, Attachment{ContainerID: "nope", IfName: "eth0"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of absent = %v, want ErrNotFound", err)
	}
	if err := c.Register(ctx, Registration{ContainerID: "../x", IfName: "eth0"}); err == nil || !strings.Contains(err.Error(), "containerID") {
		t.Errorf("Register of invalid ID = %v, want an error naming containerID", err)
	}
	if err := c.Register(ctx, reg("c2", "eth0")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := c.Unregister(ctx, Attachment{ContainerID: "c2", IfName: "eth0"}); err != nil {
			t.Fatalf("unregister: %v", err)
		}
	}
	if err := c.Register(ctx, reg("c3", "eth0")); err != nil {
		t.Fatal(err)
	}
	removed, err := c.GC(ctx, []Attachment{r.Key()})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].ContainerID != "c3" {
		t.Errorf("GC removed %+v, want c3 only", removed)
	}
	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.List(), list, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("List (-store +client):\n%s", diff)
	}
}

func TestServerRestartKeepsRegistrations(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	r := reg("keep", "eth0", "10.244.0.9")
	func() {
		store, err := NewStore(filepath.Join(dir, "regs"))
		if err != nil {
			t.Fatal(err)
		}
		srv := NewServer(filepath.Join(dir, "run", "proxier.sock"), store, nil)
		sctx, cancel := context.WithCancel(ctx)
		if err := srv.Listen(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(sctx) }()
		if err := NewClient(filepath.Join(dir, "run", "proxier.sock")).Register(ctx, r); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	sock, _ := startServer(t, dir, nil)
	got, err := NewClient(sock).Get(ctx, r.Key())
	if err != nil {
		t.Fatalf("registration lost across restart: %v", err)
	}
	if diff := cmp.Diff(r, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("after restart (-want +got):\n%s", diff)
	}
}

func TestServerUnavailable(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "absent.sock"))
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrUnavailable) || !NotListening(err) {
		t.Errorf("Status with no server = %v, want ErrUnavailable and NotListening", err)
	}
}

func TestListenSocketPathRules(t *testing.T) {
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, sock string)
		wantErr string // empty: Listen must succeed
	}{
		{name: "fresh directory"},
		{
			name: "stale socket is replaced",
			prepare: func(t *testing.T, sock string) {
				ln, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				ln.(*net.UnixListener).SetUnlinkOnClose(false)
				ln.Close()
			},
		},
		{
			name: "symlink is refused",
			prepare: func(t *testing.T, sock string) {
				if err := os.Symlink("/dev/null", sock); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "symlink",
		},
		{
			name: "regular file is kept",
			prepare: func(t *testing.T, sock string) {
				if err := os.WriteFile(sock, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "not a socket",
		},
		{
			name: "live socket is not stolen",
			prepare: func(t *testing.T, sock string) {
				ln, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
			},
			wantErr: "socket in use",
		},
		{
			name: "second server is refused by the lock",
			prepare: func(t *testing.T, sock string) {
				srv := NewServer(sock, store, nil)
				if err := srv.Listen(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(srv.sock.close)
			},
			wantErr: "another node API server",
		},
		{
			name: "directory is a symlink",
			prepare: func(t *testing.T, sock string) {
				dir := filepath.Dir(sock)
				if err := os.Remove(dir); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(t.TempDir(), dir); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "not a directory",
		},
		{
			name: "directory mode is tightened",
			prepare: func(t *testing.T, sock string) {
				if err := os.Chmod(filepath.Dir(sock), 0o755); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "run", "proxier.sock")
			if err := os.Mkdir(filepath.Dir(sock), 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.prepare != nil {
				tt.prepare(t, sock)
			}
			srv := NewServer(sock, store, nil)
			err := srv.Listen()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Listen = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx) }()
			st, err := NewClient(sock).Status(ctx)
			if err != nil || st.Ready {
				t.Errorf("Status = %+v, %v; want not ready, nil", st, err)
			}
			if fi, err := os.Stat(filepath.Dir(sock)); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("directory mode = %v, %v; want 0700", fi.Mode().Perm(), err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(sock); !os.IsNotExist(err) {
				t.Errorf("socket left after shutdown: %v", err)
			}
		})
	}
}

func TestClientTimeout(t *testing.T) {
	// A server that accepts and never answers: the client gives up after its timeout.
	sock := filepath.Join(t.TempDir(), "slow.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	c := NewClient(sock)
	c.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, err = c.Status(context.Background())
	if !errors.Is(err, ErrUnavailable) || NotListening(err) {
		t.Errorf("Status on a silent server = %v, want ErrUnavailable and not NotListening", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("client took %v, want about its 100ms timeout", d)
	}
}
