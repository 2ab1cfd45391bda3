package nodeapi

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func reg(id, ifName string, ips ...string) Registration {
	r := Registration{ContainerID: id, IfName: ifName, Netns: "/var/run/netns/" + id, PodNamespace: "default", PodName: "pod-" + id}
	for _, ip := range ips {
		r.IPs = append(r.IPs, netip.MustParseAddr(ip))
	}
	return r
}

func TestStoreRegisterListPersist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "regs")
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var changes atomic.Int32
	s.OnChange(func() { changes.Add(1) })
	b := reg("bbb", "eth0", "10.0.0.2", "fd00::2")
	a := reg("aaa", "eth0", "10.0.0.1")
	for _, r := range []Registration{b, a, a} { // a twice: idempotent, one change
		if err := s.Register(r); err != nil {
			t.Fatalf("register %s: %v", r.Key(), err)
		}
	}
	if got := changes.Load(); got != 2 {
		t.Errorf("OnChange calls = %d, want 2", got)
	}
	want := []Registration{a, b}
	if diff := cmp.Diff(want, s.List(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("store dir mode = %v, want 0700", fi.Mode().Perm())
	}
	// A new store on the same directory (a proxier restart) sees the same registrations.
	s2, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, s2.List(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("List after reopen (-want +got):\n%s", diff)
	}
	if len(s2.Skipped()) != 0 {
		t.Errorf("Skipped = %v, want none", s2.Skipped())
	}
}

func TestStoreUnregisterAndGC(t *testing.T) {
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Registration{reg("a", "eth0"), reg("a", "net1"), reg("b", "eth0"), reg("c", "eth0")} {
		if err := s.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []bool{true, false, false} { // DEL thrice
		got, err := s.Unregister(Attachment{ContainerID: "b", IfName: "eth0"})
		if err != nil || got != want {
			t.Fatalf("unregister #%d = %v, %v; want %v, nil", i, got, err, want)
		}
	}
	removed, err := s.GC([]Attachment{{ContainerID: "a", IfName: "eth0"}, {ContainerID: "zzz", IfName: "eth0"}})
	if err != nil {
		t.Fatal(err)
	}
	keys := func(rs []Registration) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Key().String())
		}
		return out
	}
	if diff := cmp.Diff([]string{"a/net1", "c/eth0"}, keys(removed)); diff != "" {
		t.Errorf("GC removed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a/eth0"}, keys(s.List())); diff != "" {
		t.Errorf("after GC (-want +got):\n%s", diff)
	}
	files, _ := filepath.Glob(filepath.Join(s.Dir(), "*"))
	if diff := cmp.Diff([]string{filepath.Join(s.Dir(), "a@eth0.json")}, files); diff != "" {
		t.Errorf("files on disk (-want +got):\n%s", diff)
	}
}

func TestStoreRejectsInvalidNames(t *testing.T) {
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Registration{
		{ContainerID: "", IfName: "eth0"},
		{ContainerID: "../../etc", IfName: "eth0"},
		{ContainerID: "a@b", IfName: "eth0"},
		{ContainerID: "abc", IfName: ""},
		{ContainerID: "abc", IfName: "eth/0"},
		{ContainerID: "abc", IfName: ".."},
		{ContainerID: "abc", IfName: "averyveryverylongname"},
		{ContainerID: "abc", IfName: "eth0", IPs: []netip.Addr{{}}},
	} {
		if err := s.Register(r); err == nil {
			t.Errorf("Register(%+v) succeeded, want an error", r)
		}
	}
	if _, err := s.Unregister(Attachment{ContainerID: "../x", IfName: "eth0"}); err == nil {
		t.Errorf("Unregister of an invalid name succeeded")
	}
	if n := len(s.List()); n != 0 {
		t.Errorf("store holds %d registrations, want 0", n)
	}
}

func TestStoreSkipsGarbage(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	good := reg("good", "eth0", "10.1.0.5")
	if err := s.Register(good); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("README", "not a registration")
	write("bad@eth0.json", "{not json")
	write("other@eth0.json", `{"containerID":"mismatch","ifName":"eth0"}`)
	write("noat.json", `{}`)
	write(".tmp-123", `{"containerID":"half`)
	if err := os.Mkdir(filepath.Join(dir, "sub@eth0.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	s2, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Registration{good}, s2.List(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	var names []string
	for _, sk := range s2.Skipped() {
		names = append(names, strings.SplitN(sk, ":", 2)[0])
	}
	if diff := cmp.Diff([]string{"README", "bad@eth0.json", "noat.json", "other@eth0.json", "sub@eth0.json"}, names); diff != "" {
		t.Errorf("Skipped (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !os.IsNotExist(err) {
		t.Errorf("leftover temporary file not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad@eth0.json")); err != nil {
		t.Errorf("garbage file should be left in place: %v", err)
	}
}
