package svchealth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
)

// loopback listens for real on 127.0.0.1 ephemeral ports and remembers which port stands
// for which asked address, so tests need no fixed free port.
type loopback struct {
	mu     sync.Mutex
	got    map[string]string // asked host:port -> real address
	asked  []string
	refuse map[string]bool
}

func newLoopback() *loopback { return &loopback{got: map[string]string{}, refuse: map[string]bool{}} }

func (l *loopback) listen(network, address string) (net.Listener, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, address)
	if l.refuse[address] {
		return nil, errors.New("address already in use")
	}
	ln, err := net.Listen(network, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l.got[address] = ln.Addr().String()
	return ln, nil
}

func (l *loopback) addr(asked string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got[asked]
}

// get asks the health check at the real address of asked; code 0 when nothing answers.
func get(t *testing.T, addr string) (int, Response) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		return 0, Response{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	return resp.StatusCode, r
}

var (
	web = types.NamespacedName{Namespace: "default", Name: "web"}
	api = types.NamespacedName{Namespace: "team", Name: "api"}
)

func TestServersFollowServices(t *testing.T) {
	l := newLoopback()
	s := New(nil, l.listen)
	t.Cleanup(s.Close)

	type answer struct {
		Code int
		Body Response
	}
	ask := func(asked string) answer {
		a := l.addr(asked)
		if a == "" {
			t.Fatalf("nothing listened on %s", asked)
		}
		c, r := get(t, a)
		return answer{c, r}
	}
	steps := []struct {
		name    string
		full    bool
		entries map[types.NamespacedName]Entry
		ports   []uint16
		asks    map[string]answer
	}{
		{"two Services, one with a local endpoint", true, map[types.NamespacedName]Entry{web: {30100, 2}, api: {30200, 0}},
			[]uint16{30100, 30200}, map[string]answer{
				":30100": {200, Response{ServiceName{"default", "web"}, 2, true}},
				":30200": {503, Response{ServiceName{"team", "api"}, 0, true}},
			}},
		{"the count changes, the listener stays", false, map[types.NamespacedName]Entry{api: {30200, 1}},
			[]uint16{30100, 30200}, map[string]answer{":30200": {200, Response{ServiceName{"team", "api"}, 1, true}}}},
		{"web moves to another port", false, map[types.NamespacedName]Entry{web: {30101, 0}},
			[]uint16{30101, 30200}, map[string]answer{":30101": {503, Response{ServiceName{"default", "web"}, 0, true}}}},
		{"a full sync without api closes its port", true, map[types.NamespacedName]Entry{web: {30101, 3}},
			[]uint16{30101}, map[string]answer{":30101": {200, Response{ServiceName{"default", "web"}, 3, true}}}},
		{"zero port removes", false, map[types.NamespacedName]Entry{web: {}}, nil, nil},
	}
	for _, st := range steps {
		var err error
		if st.full {
			err = s.Sync(st.entries)
		} else {
			err = s.Update(st.entries)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if diff := cmp.Diff(st.ports, s.Ports()); diff != "" {
			t.Errorf("%s: ports (-want +got):\n%s", st.name, diff)
		}
		for asked, want := range st.asks {
			if diff := cmp.Diff(want, ask(asked)); diff != "" {
				t.Errorf("%s: answer on %s (-want +got):\n%s", st.name, asked, diff)
			}
		}
	}
	// Every listener that was closed answers nothing any more.
	for _, asked := range []string{":30100", ":30101", ":30200"} {
		if c, _ := get(t, l.addr(asked)); c != 0 {
			t.Errorf("closed %s still answers %d", asked, c)
		}
	}
	// Only the changes opened listeners: one listen per port ever used, none for a
	// changed count or a full sync that keeps a port.
	asked := slices.Clone(l.asked)
	slices.Sort(asked)
	if diff := cmp.Diff([]string{":30100", ":30101", ":30200"}, asked); diff != "" {
		t.Errorf("listens (-want +got):\n%s", diff)
	}
}

func TestAddressesAndRetry(t *testing.T) {
	l := newLoopback()
	a1, a2 := netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("fd00::10")
	s := New([]netip.Addr{a1, a2}, l.listen)
	t.Cleanup(s.Close)
	busy := net.JoinHostPort(a2.String(), "30100")
	l.refuse[busy] = true
	if err := s.Sync(map[types.NamespacedName]Entry{web: {30100, 1}}); err == nil {
		t.Fatal("Sync succeeded with a taken address")
	}
	if got := s.Ports(); len(got) != 0 {
		t.Errorf("ports %v after a failed listen, want none (all addresses or nothing)", got)
	}
	if c, _ := get(t, l.addr("192.168.1.10:30100")); c != 0 {
		t.Errorf("the partly opened port answers %d; want it closed again", c)
	}
	delete(l.refuse, busy)
	if err := s.Update(nil); err != nil {
		t.Fatalf("retry: %v", err)
	}
	for _, asked := range []string{"192.168.1.10:30100", "[fd00::10]:30100"} {
		if c, _ := get(t, l.addr(asked)); c != 200 {
			t.Errorf("%s answers %d, want 200", asked, c)
		}
	}
	// New addresses: every port listens again on them only.
	old := l.addr("192.168.1.10:30100")
	if err := s.SetAddresses([]netip.Addr{a1}); err != nil {
		t.Fatal(err)
	}
	if c, _ := get(t, old); c != 0 {
		t.Errorf("the old listener still answers %d", c)
	}
	if c, _ := get(t, l.addr("192.168.1.10:30100")); c != 200 {
		t.Errorf("the new listener answers %d, want 200", c)
	}
}

// A real listener on a fixed loopback port, as the daemon opens it.
func TestRealListener(t *testing.T) {
	port, s := loopbackServers(t)
	if err := s.Sync(map[types.NamespacedName]Entry{web: {uint16(port), 0}}); err != nil {
		t.Fatal(err)
	}
	c, r := get(t, "127.0.0.1:"+strconv.Itoa(port))
	if diff := cmp.Diff(fmt.Sprint(503, Response{ServiceName{"default", "web"}, 0, true}), fmt.Sprint(c, r)); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	s.Close()
	if c, _ := get(t, "127.0.0.1:"+strconv.Itoa(port)); c != 0 {
		t.Errorf("after Close the port answers %d", c)
	}
}

// No NodePort address (an empty, non-nil list): nothing listens, the ports are kept and
// open again once there are addresses; nil listens on every address.
func TestNoAddressesListensNowhere(t *testing.T) {
	l := newLoopback()
	s := New([]netip.Addr{}, l.listen)
	t.Cleanup(s.Close)
	if err := s.Sync(map[types.NamespacedName]Entry{web: {30100, 1}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Ports(); len(got) != 0 || len(l.asked) != 0 {
		t.Errorf("ports %v, listens %q with no address; want none", got, l.asked)
	}
	if err := s.SetAddresses(nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := get(t, l.addr(":30100")); c != 200 {
		t.Errorf("every address: answer %d, want 200", c)
	}
	old := l.addr(":30100")
	if err := s.SetAddresses([]netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if got := s.Ports(); len(got) != 0 {
		t.Errorf("ports %v after the addresses went, want none", got)
	}
	if c, _ := get(t, old); c != 0 {
		t.Errorf("the listener still answers %d after the addresses went", c)
	}
}

// While the proxier is unhealthy (no successful sync lately) every port answers 503 with
// serviceProxyHealthy false, local endpoints or not, as kube-proxy does; healthy again, 200.
func TestProxyUnhealthyAnswers503(t *testing.T) {
	port, s := loopbackServers(t)
	var mu sync.Mutex
	healthy := false
	s.SetProxyHealth(func() bool { mu.Lock(); defer mu.Unlock(); return healthy })
	if err := s.Sync(map[types.NamespacedName]Entry{web: {uint16(port), 2}}); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c, r := get(t, addr)
	if diff := cmp.Diff(fmt.Sprint(503, Response{ServiceName{"default", "web"}, 2, false}), fmt.Sprint(c, r)); diff != "" {
		t.Errorf("unhealthy proxier answer (-want +got):\n%s", diff)
	}
	mu.Lock()
	healthy = true
	mu.Unlock()
	c, r = get(t, addr)
	if diff := cmp.Diff(fmt.Sprint(200, Response{ServiceName{"default", "web"}, 2, true}), fmt.Sprint(c, r)); diff != "" {
		t.Errorf("healthy proxier answer (-want +got):\n%s", diff)
	}
}

// loopbackServers returns a free loopback port and Servers listening on 127.0.0.1.
func loopbackServers(t *testing.T) (int, *Servers) {
	t.Helper()
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	s := New([]netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil)
	t.Cleanup(s.Close)
	return port, s
}
