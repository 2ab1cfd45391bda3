package sysctltest

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFake(t *testing.T) {
	f := NewFake(map[string]string{"net.ipv4.ip_forward": "0", "net/ipv4/vs/conntrack": "0"})
	if v, err := f.Get("net/ipv4/ip_forward"); err != nil || v != "0" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if err := f.Set("net.ipv4.vs.conntrack", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get("net.ipv6.conf.all.forwarding"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get absent: %v", err)
	}
	if err := f.Set("net.ipv6.conf.all.forwarding", "1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Set absent: %v", err)
	}
	if err := f.Set("net/../x", "1"); err == nil {
		t.Errorf("Set accepted ..")
	}
	boom := errors.New("boom")
	f.FailNext(boom)
	if err := f.Set("net.ipv4.ip_forward", "1"); !errors.Is(err, boom) {
		t.Errorf("injected failure: %v", err)
	}
	if err := f.Set("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	wantOps := []string{
		"set net/ipv4/vs/conntrack 1",
		"set net/ipv6/conf/all/forwarding 1: set sysctl net/ipv6/conf/all/forwarding: file does not exist",
		"set net/ipv4/ip_forward 1: boom",
		"set net/ipv4/ip_forward 1",
	}
	if diff := cmp.Diff(wantOps, f.Ops()); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("net/ipv4/ip_forward = 1\nnet/ipv4/vs/conntrack = 1\n", f.Dump()); diff != "" {
		t.Errorf("dump (-want +got):\n%s", diff)
	}
}
