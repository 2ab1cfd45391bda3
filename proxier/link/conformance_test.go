package link_test

import (
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/link/linktest"
)

// One sequence of calls against the fake and, in the test VM, against the kernel, with the
// same expected outcome from both: what lets the reconciler's tests trust the fake. The
// kernel's lo stands for a link kubevs does not own; the fake gets one of the same name.

const dev = link.DefaultDummy

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func classify(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, link.ErrExist):
		return "exist"
	case errors.Is(err, link.ErrNotFound):
		return "not found"
	case errors.Is(err, link.ErrNotDummy):
		return "not a dummy"
	}
	return "other error"
}

var scenario = []struct {
	name string
	do   func(link.Interface) error
	want string
}{
	{"list before create", func(l link.Interface) error { _, err := l.Addresses(dev); return err }, "not found"},
	{"add before create", func(l link.Interface) error { return l.AddAddress(dev, addr("10.96.0.1")) }, "not found"},
	{"delete before create", func(l link.Interface) error { return l.DeleteDummy(dev) }, "not found"},
	{"ensure", func(l link.Interface) error { return l.EnsureDummy(dev) }, "ok"},
	{"ensure again", func(l link.Interface) error { return l.EnsureDummy(dev) }, "ok"},
	{"ensure over lo", func(l link.Interface) error { return l.EnsureDummy("lo") }, "not a dummy"},
	{"delete lo", func(l link.Interface) error { return l.DeleteDummy("lo") }, "not a dummy"},
	{"add v4", func(l link.Interface) error { return l.AddAddress(dev, addr("10.96.0.1")) }, "ok"},
	{"add v4 again", func(l link.Interface) error { return l.AddAddress(dev, addr("10.96.0.1")) }, "exist"},
	{"add v6", func(l link.Interface) error { return l.AddAddress(dev, addr("fd00::1")) }, "ok"},
	{"add v4 #2", func(l link.Interface) error { return l.AddAddress(dev, addr("10.96.0.2")) }, "ok"},
	{"delete v4", func(l link.Interface) error { return l.DeleteAddress(dev, addr("10.96.0.1")) }, "ok"},
	{"delete v4 again", func(l link.Interface) error { return l.DeleteAddress(dev, addr("10.96.0.1")) }, "not found"},
	{"delete unbound v6", func(l link.Interface) error { return l.DeleteAddress(dev, addr("fd00::2")) }, "not found"},
}

func runScenario(t *testing.T, l link.Interface) {
	t.Helper()
	for _, s := range scenario {
		if got := classify(s.do(l)); got != s.want {
			t.Errorf("%s: %s, want %s", s.name, got, s.want)
		}
	}
	got, err := l.Addresses(dev)
	want := []netip.Addr{addr("10.96.0.2"), addr("fd00::1")}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); err != nil || diff != "" {
		t.Errorf("addresses after the scenario (-want +got):\n%s%v", diff, err)
	}
	if err := l.DeleteDummy(dev); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := l.Addresses(dev); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("addresses after delete: %v, want not found", err)
	}
}

func TestConformanceFake(t *testing.T) {
	f := linktest.NewFake()
	f.AddForeignLink("lo")
	runScenario(t, f)
}

func TestConformanceKernel(t *testing.T) {
	testenv.RequireVM(t)
	testenv.InNetns(t, func() {
		l, err := link.New()
		if err != nil {
			t.Fatal(err)
		}
		defer l.(io.Closer).Close()
		runScenario(t, l)
	})
}
