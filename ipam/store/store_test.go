package store_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/ipam/store"
	"github.com/kubevs/kubevs/ipam/store/storetest"
)

var (
	ip1 = netip.MustParseAddr("10.244.1.2")
	ip2 = netip.MustParseAddr("10.244.1.3")
	ip6 = netip.MustParseAddr("fd00:10:244:1::2")
	c1  = store.Owner{ContainerID: "c1", IfName: "eth0"}
	c2  = store.Owner{ContainerID: "c2", IfName: "eth0"}
)

// impls runs a test against both stores: the contract they share.
func impls(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Run("disk", func(t *testing.T) {
		d, err := store.OpenDisk(filepath.Join(t.TempDir(), "net"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		fn(t, d)
	})
	t.Run("fake", func(t *testing.T) { fn(t, storetest.NewFake()) })
}

func locked(t *testing.T, s store.Store) {
	t.Helper()
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Unlock() })
}

func TestReserveRelease(t *testing.T) {
	impls(t, func(t *testing.T, s store.Store) {
		locked(t, s)
		steps := []struct {
			name    string
			op      func() error
			wantErr error
		}{
			{"reserve ip1 for c1", func() error { return s.Reserve(ip1, c1) }, nil},
			{"reserve ip1 again is EEXIST", func() error { return s.Reserve(ip1, c2) }, store.ErrReserved},
			{"reserve ipv6 for c1", func() error { return s.Reserve(ip6, c1) }, nil},
			{"reserve ip2 for c2", func() error { return s.Reserve(ip2, c2) }, nil},
			{"release ip2", func() error { return s.Release(ip2) }, nil},
			{"release ip2 again is ENOENT", func() error { return s.Release(ip2) }, store.ErrNotReserved},
			{"bad owner", func() error { return s.Reserve(ip2, store.Owner{ContainerID: "a\nb", IfName: "eth0"}) }, errAny},
			{"empty owner", func() error { return s.Reserve(ip2, store.Owner{}) }, errAny},
		}
		for _, st := range steps {
			err := st.op()
			switch {
			case st.wantErr == nil && err != nil:
				t.Fatalf("%s: %v", st.name, err)
			case st.wantErr == errAny && err == nil:
				t.Fatalf("%s: no error", st.name)
			case st.wantErr != nil && st.wantErr != errAny && !errors.Is(err, st.wantErr):
				t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
			}
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		got, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		want := []store.Entry{{IP: ip1, Owner: c1}, {IP: ip6, Owner: c1}}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("List (-want +got):\n%s", diff)
		}
	})
}

var errAny = errors.New("any error")

func TestLastReserved(t *testing.T) {
	impls(t, func(t *testing.T, s store.Store) {
		locked(t, s)
		if _, ok, err := s.LastReserved("4"); err != nil || ok {
			t.Fatalf("LastReserved on empty store = %v, %v", ok, err)
		}
		if err := s.SetLastReserved("4", ip2); err != nil {
			t.Fatal(err)
		}
		if err := s.SetLastReserved("6", ip6); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.LastReserved("4")
		if err != nil || !ok || got != ip2 {
			t.Errorf("LastReserved(4) = %v, %v, %v; want %v", got, ok, err, ip2)
		}
	})
}

// TestDiskTornRecords plants what a crash can leave behind and checks that none of it blocks
// a reservation, while a complete record does.
func TestDiskTornRecords(t *testing.T) {
	tests := []struct {
		name     string
		content  string
		wantFree bool
	}{
		{name: "empty (crash after create)", content: "", wantFree: true},
		{name: "cut inside container ID", content: "abc", wantFree: true},
		{name: "cut after container ID", content: "abcdef\n", wantFree: true},
		{name: "cut inside ifname", content: "abcdef\neth", wantFree: true},
		{name: "garbage", content: "\x00\xff\x13garbage", wantFree: true},
		{name: "too many lines", content: "a\nb\nc\n", wantFree: true},
		{name: "oversized", content: string(make([]byte, 8192)), wantFree: true},
		{name: "complete record", content: "abcdef\neth0\n", wantFree: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "net")
			d, err := store.OpenDisk(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := os.WriteFile(filepath.Join(dir, ip1.String()), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			locked(t, d)
			entries, err := d.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Corrupt != tt.wantFree {
				t.Fatalf("List = %+v, want one entry with Corrupt=%v", entries, tt.wantFree)
			}
			err = d.Reserve(ip1, c1)
			if tt.wantFree && err != nil {
				t.Fatalf("Reserve over a torn record: %v", err)
			}
			if !tt.wantFree && !errors.Is(err, store.ErrReserved) {
				t.Fatalf("Reserve over a complete record: err = %v, want ErrReserved", err)
			}
			if tt.wantFree {
				b, _ := os.ReadFile(filepath.Join(dir, ip1.String()))
				if string(b) != "c1\neth0\n" {
					t.Errorf("reclaimed file holds %q", b)
				}
			}
		})
	}
}

func TestDiskIgnoresForeignFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	d, err := store.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, n := range []string{"README", "last_reserved.4", "10.0.0.01", ".10.0.0.1.tmp-1"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	locked(t, d)
	entries, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("List = %+v, want none", entries)
	}
}

func TestDiskFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	d, err := store.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	locked(t, d)
	if err := d.Reserve(ip1, c1); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"": 0o700, ip1.String(): 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%q mode = %v, want %v", name, st.Mode().Perm(), want)
		}
	}
}

func TestFakeRequiresLock(t *testing.T) {
	f := storetest.NewFake()
	if err := f.Reserve(ip1, c1); err == nil {
		t.Error("Reserve without the lock succeeded")
	}
	if err := f.Unlock(); err == nil {
		t.Error("Unlock of an unlocked fake succeeded")
	}
}

func TestFakeCorruptAndDump(t *testing.T) {
	f := storetest.NewFake()
	f.Corrupt(ip2)
	locked(t, f)
	if err := f.Reserve(ip1, c1); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.244.1.2 c1/eth0", "10.244.1.3 <torn>"}, f.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
	if err := f.Reserve(ip2, c2); err != nil {
		t.Errorf("Reserve over a torn entry: %v", err)
	}
}
