package ipvs_test

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
)

// The conformance scenario runs one sequence of calls against the fake and, in the test VM,
// against the kernel, and expects the same outcome from both: this is what lets the
// reconciler's tests trust the fake.

type outcome string

const (
	ok       outcome = "ok"
	exist    outcome = "exist"
	notFound outcome = "not found"
	failed   outcome = "other error"
)

func classify(err error) outcome {
	switch {
	case err == nil:
		return ok
	case errors.Is(err, ipvs.ErrExist):
		return exist
	case errors.Is(err, ipvs.ErrNotFound):
		return notFound
	}
	return failed
}

var (
	web  = ipvs.Key{Address: netip.MustParseAddr("10.96.0.1"), Protocol: ipvs.TCP, Port: 80}
	dns6 = ipvs.Key{Address: netip.MustParseAddr("fd00::a"), Protocol: ipvs.UDP, Port: 53}
	sctp = ipvs.Key{Address: netip.MustParseAddr("10.96.0.9"), Protocol: ipvs.SCTP, Port: 9}
)

func rs(addr string, port uint16, weight int) ipvs.RealServer {
	return ipvs.RealServer{Address: netip.MustParseAddr(addr), Port: port, Weight: int32(weight)}
}

type step struct {
	name string
	do   func(ipvs.Interface) error
	want outcome
}

var scenario = []step{
	{"add web", func(v ipvs.Interface) error { return v.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "rr"}) }, ok},
	{"add web again", func(v ipvs.Interface) error {
		return v.AddVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "wrr"})
	}, exist},
	{"add dns6 persistent", func(v ipvs.Interface) error {
		return v.AddVirtualServer(ipvs.VirtualServer{Key: dns6, Scheduler: "sh", Persistent: true, Timeout: 10800})
	}, ok},
	{"add sctp", func(v ipvs.Interface) error {
		return v.AddVirtualServer(ipvs.VirtualServer{Key: sctp, Scheduler: "mh"})
	}, ok},
	{"update absent", func(v ipvs.Interface) error {
		return v.UpdateVirtualServer(ipvs.VirtualServer{Key: ipvs.Key{Address: web.Address, Protocol: ipvs.UDP, Port: 80}, Scheduler: "rr"})
	}, notFound},
	{"update web with a timeout but no persistence", func(v ipvs.Interface) error {
		return v.UpdateVirtualServer(ipvs.VirtualServer{Key: web, Scheduler: "lc", Timeout: 30})
	}, ok},
	{"add web rs", func(v ipvs.Interface) error { return v.AddRealServer(web, rs("10.244.0.2", 8080, 1)) }, ok},
	{"add web rs twice", func(v ipvs.Interface) error { return v.AddRealServer(web, rs("10.244.0.2", 8080, 3)) }, exist},
	{"add web rs weight 0", func(v ipvs.Interface) error { return v.AddRealServer(web, rs("10.244.0.3", 8080, 0)) }, ok},
	{"add dns6 rs", func(v ipvs.Interface) error { return v.AddRealServer(dns6, rs("fd00:244::2", 53, 1)) }, ok},
	{"add mixed family rs", func(v ipvs.Interface) error { return v.AddRealServer(dns6, rs("10.244.0.2", 53, 1)) }, failed},
	{"add negative weight", func(v ipvs.Interface) error { return v.AddRealServer(web, rs("10.244.0.4", 8080, -1)) }, failed},
	{"add rs to absent", func(v ipvs.Interface) error {
		return v.AddRealServer(ipvs.Key{Address: web.Address, Protocol: ipvs.UDP, Port: 80}, rs("10.244.0.2", 80, 1))
	}, notFound},
	{"update web rs", func(v ipvs.Interface) error { return v.UpdateRealServer(web, rs("10.244.0.3", 8080, 7)) }, ok},
	{"update absent rs", func(v ipvs.Interface) error { return v.UpdateRealServer(web, rs("10.244.0.9", 8080, 7)) }, notFound},
	{"delete absent rs", func(v ipvs.Interface) error { return v.DeleteRealServer(web, rs("10.244.0.9", 8080, 0)) }, notFound},
	{"delete web rs", func(v ipvs.Interface) error { return v.DeleteRealServer(web, rs("10.244.0.2", 8080, 0)) }, ok},
	{"list rs of absent", func(v ipvs.Interface) error {
		_, err := v.RealServers(ipvs.Key{Address: dns6.Address, Protocol: ipvs.TCP, Port: 53})
		return err
	}, notFound},
	{"list rs of sctp (none)", func(v ipvs.Interface) error { _, err := v.RealServers(sctp); return err }, ok},
	{"delete sctp", func(v ipvs.Interface) error { return v.DeleteVirtualServer(sctp) }, ok},
	{"delete sctp again", func(v ipvs.Interface) error { return v.DeleteVirtualServer(sctp) }, notFound},
}

// wantEnd is the table after the scenario, printed as ipvstest's Dump prints it.
const wantEnd = `TCP:10.96.0.1:80 lc
  -> 10.244.0.3:8080 weight 7
UDP:[fd00::a]:53 sh persistent 10800s
  -> [fd00:244::2]:53 weight 1
`

func runScenario(t *testing.T, v ipvs.Interface) {
	t.Helper()
	for _, s := range scenario {
		if got := classify(s.do(v)); got != s.want {
			t.Errorf("%s: %s, want %s", s.name, got, s.want)
		}
	}
	if diff := cmp.Diff(wantEnd, dump(t, v)); diff != "" {
		t.Errorf("table after the scenario (-want +got):\n%s", diff)
	}
}

// dump prints any implementation's table the way ipvstest.Fake.Dump does, counters aside.
func dump(t *testing.T, v ipvs.Interface) string {
	t.Helper()
	vss, err := v.VirtualServers()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(vss, func(a, b ipvs.VirtualServer) int { return ipvstest.CompareKeys(a.Key, b.Key) })
	out := ""
	for _, vs := range vss {
		out += vs.String() + "\n"
		rss, err := v.RealServers(vs.Key)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(rss, func(a, b ipvs.RealServer) int { return a.AddrPort().Compare(b.AddrPort()) })
		for _, r := range rss {
			out += fmt.Sprintf("  -> %s\n", r)
		}
	}
	return out
}

func TestConformanceFake(t *testing.T) {
	f := ipvstest.NewFake()
	runScenario(t, f)
	if diff := cmp.Diff(wantEnd, f.Dump()); diff != "" {
		t.Errorf("fake's own dump (-want +got):\n%s", diff)
	}
}

func TestConformanceKernel(t *testing.T) {
	testenv.RequireVM(t)
	testenv.InNetns(t, func() {
		v, err := ipvs.New()
		if err != nil {
			t.Fatal(err)
		}
		defer v.(io.Closer).Close()
		runScenario(t, v)
	})
}
