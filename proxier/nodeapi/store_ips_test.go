package nodeapi

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ipSet(ips ...string) map[netip.Addr]struct{} {
	out := map[netip.Addr]struct{}{}
	for _, ip := range ips {
		out[netip.MustParseAddr(ip)] = struct{}{}
	}
	return out
}

// TestStoreIPsFollowsChanges: the store's IP index is what a walk over its registrations
// gives, after every kind of change and after a reload from disk.
func TestStoreIPsFollowsChanges(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	walk := func(s *Store) map[netip.Addr]struct{} {
		out := map[netip.Addr]struct{}{}
		for _, r := range s.List() {
			for _, ip := range r.IPs {
				out[ip.Unmap()] = struct{}{}
			}
		}
		return out
	}
	steps := []struct {
		name string
		do   func() error
		want map[netip.Addr]struct{}
	}{
		{"two pods", func() error {
			return errorsOf(s.Register(reg("a", "eth0", "10.0.0.1", "fd00::1")), s.Register(reg("b", "eth0", "10.0.0.2")))
		}, ipSet("10.0.0.1", "fd00::1", "10.0.0.2")},
		{"a second registration of one IP", func() error { return s.Register(reg("c", "eth0", "10.0.0.2")) }, ipSet("10.0.0.1", "fd00::1", "10.0.0.2")},
		{"one of them goes", func() error { _, err := s.Unregister(Attachment{"b", "eth0"}); return err }, ipSet("10.0.0.1", "fd00::1", "10.0.0.2")},
		{"the other goes", func() error { _, err := s.Unregister(Attachment{"c", "eth0"}); return err }, ipSet("10.0.0.1", "fd00::1")},
		{"replaced with other IPs", func() error { return s.Register(reg("a", "eth0", "10.0.0.9")) }, ipSet("10.0.0.9")},
		{"an IPv4-mapped IPv6 address", func() error { return s.Register(reg("d", "eth0", "::ffff:10.0.0.9")) }, ipSet("10.0.0.9")},
		{"GC keeps d", func() error { _, err := s.GC([]Attachment{{"d", "eth0"}}); return err }, ipSet("10.0.0.9")},
		{"GC keeps nothing", func() error { _, err := s.GC(nil); return err }, ipSet()},
		{"again", func() error { return s.Register(reg("e", "eth0", "10.0.0.5")) }, ipSet("10.0.0.5")},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, s.IPs()); diff != "" {
			t.Errorf("%s: IPs (-want +got):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(walk(s), s.IPs()); diff != "" {
			t.Errorf("%s: IPs differ from a walk (-walk +IPs):\n%s", st.name, diff)
		}
	}
	reloaded, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ipSet("10.0.0.5"), reloaded.IPs()); diff != "" {
		t.Errorf("after a reload: IPs (-want +got):\n%s", diff)
	}
}

// TestStoreIPsCostsOneCopyOfTheIPs: a full store whose registrations share one IP answers
// IPs with a handful of allocations, however many registrations it holds.
func TestStoreIPsCostsOneCopyOfTheIPs(t *testing.T) {
	s := fullStore(t, MaxRegistrations)
	if n := testing.AllocsPerRun(20, func() { _ = s.IPs() }); n > 4 {
		t.Errorf("IPs with %d registrations: %v allocations, want a handful", MaxRegistrations, n)
	}
}

// fullStore returns a store holding n registrations of one IP, filled in memory (no disk
// writes: the test is about the index, not the files).
func fullStore(t testing.TB, n int) *Store {
	t.Helper()
	s := &Store{dir: t.TempDir(), max: MaxRegistrations, regs: map[Attachment]Registration{}, ips: map[netip.Addr]int{}}
	for i := range n {
		s.put(reg(fmt.Sprintf("flood-%d", i), "eth0", "10.244.0.250"))
	}
	if got := s.IPs(); len(got) != 1 {
		t.Fatalf("a store of one IP indexes %v", got)
	}
	return s
}

func errorsOf(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
