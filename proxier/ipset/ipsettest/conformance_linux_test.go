//go:build linux

package ipsettest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipset"
)

// TestFakeMatchesKernel runs one script against the fake and against the kernel (fresh netns)
// and compares what each call returned (members, and the sentinel each error matches).
func TestFakeMatchesKernel(t *testing.T) {
	n := testenv.NewNetns(t)
	var kernel []string
	err := n.Do(func(ns.NetNS) error {
		kernel = script(ipset.New())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(kernel, script(NewFake())); diff != "" {
		t.Errorf("fake differs from the kernel (-kernel +fake):\n%s", diff)
	}
}

func script(s ipset.Interface) []string {
	var out []string
	res := func(err error) {
		switch {
		case err == nil:
			out = append(out, "ok")
		case errors.Is(err, ipset.ErrExist):
			out = append(out, "exist")
		case errors.Is(err, ipset.ErrNotFound):
			out = append(out, "not found")
		case errors.Is(err, ipset.ErrInUse):
			out = append(out, "in use")
		default:
			out = append(out, "error")
		}
	}
	list := func(name string) {
		es, err := s.Entries(name)
		res(err)
		for _, e := range es {
			out = append(out, "  "+string(e))
		}
		counts, err := s.Counts()
		res(err)
		if n, ok := counts[name]; ok {
			out = append(out, fmt.Sprintf("  count %d", n))
		} else {
			out = append(out, "  no count")
		}
	}
	res(s.CreateSet(ipset.Set{Name: "KUBE-LOOP-BACK", Type: ipset.HashIPPortIP}))
	res(s.CreateSet(ipset.Set{Name: "KUBE-LOOP-BACK", Type: ipset.HashNet}))
	res(s.CreateSet(ipset.Set{Name: "KUBE-NET-6", Type: ipset.HashNet, Family: ipset.IPv6}))
	res(s.CreateSet(ipset.Set{Name: "KUBE-NP", Type: ipset.BitmapPort, PortFrom: 30000, PortTo: 30100}))
	res(s.AddEntries("KUBE-LOOP-BACK", "10.244.0.2,tcp:8080,10.244.0.2", "10.244.0.3,udp:53,10.244.0.3"))
	res(s.AddEntries("KUBE-LOOP-BACK", "10.244.0.2,tcp:8080,10.244.0.2", "fd00::1,tcp:1,fd00::1"))
	res(s.AddEntries("KUBE-NET-6", "fd00:1::/48", "fd00:2::1"))
	res(s.AddEntries("KUBE-NP", "30001", "30100"))
	res(s.DeleteEntries("KUBE-NP", "30001", "30002"))
	res(s.AddEntries("MISSING", "10.0.0.1"))
	list("KUBE-LOOP-BACK")
	list("KUBE-NET-6")
	list("KUBE-NP")
	list("MISSING")
	names, err := s.Sets()
	res(err)
	out = append(out, names...)
	res(s.DestroySet("KUBE-NP"))
	res(s.DestroySet("KUBE-NP"))
	return out
}
