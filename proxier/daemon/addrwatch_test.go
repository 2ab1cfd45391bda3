package daemon

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"k8s.io/utils/clock"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/runner"
)

// addrEvent is one change a fake AddressChanges delivers.
type addrEvent struct {
	link string
	addr string
}

// TestWatchAddressesRequestsFullSync feeds address changes to watchAddresses: only a
// non-link-local address inside nodePortAddresses on a link other than kube-ipvs0 asks for a
// (full) sync; a failing source is subscribed again, with a full sync for what it missed.
func TestWatchAddressesRequestsFullSync(t *testing.T) {
	var mu sync.Mutex
	var runs []runner.Reason
	synced := make(chan struct{}, 16)
	d := &Daemon{cfg: &config.Configuration{NodePortAddresses: []string{"192.168.0.0/16", "fd00:77::/64"}}, clock: clock.RealClock{}}
	d.runner = runner.New("test", func(_ context.Context, why runner.Reason) (bool, error) {
		mu.Lock()
		runs = append(runs, why)
		mu.Unlock()
		synced <- struct{}{}
		return why != runner.Requested, nil
	}, runner.Options{MaxInterval: time.Hour})

	events := make(chan addrEvent)
	subscriptions := make(chan int, 4)
	n := 0
	d.addrChanges = func(ctx context.Context, changed func(string, netip.Addr)) error {
		n++
		subscriptions <- n
		for {
			select {
			case <-ctx.Done():
				return nil
			case e := <-events:
				if e.link == "fail" {
					return errors.New("netlink: ENOBUFS")
				}
				changed(e.link, netip.MustParseAddr(e.addr))
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.runner.Loop(ctx) }()
	go func() { defer wg.Done(); d.watchAddresses(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	<-subscriptions
	for _, e := range []addrEvent{
		{"kube-ipvs0", "192.168.1.5"}, // a Service VIP on kubevs's dummy
		{"veth1234", "fe80::1"},       // a new pod's veth
		{"eth0", "10.0.0.9"},          // outside nodePortAddresses
	} {
		events <- e
	}
	select {
	case <-synced:
		t.Fatalf("an irrelevant address change caused a sync")
	case <-time.After(100 * time.Millisecond):
	}
	if d.addrsChanged.Load() {
		t.Fatal("an irrelevant address change asked for a full sync")
	}

	events <- addrEvent{"eth1", "192.168.7.1"}
	waitSync(t, synced)
	if !d.addrsChanged.Load() {
		t.Fatal("a new address in nodePortAddresses did not ask for a full sync")
	}
	d.addrsChanged.Store(false) // as the sync does

	events <- addrEvent{"fail", ""}
	waitSync(t, synced) // after the 1 s backoff
	if got := <-subscriptions; got != 2 {
		t.Fatalf("subscription %d after a failure, want 2", got)
	}
	if !d.addrsChanged.Load() {
		t.Fatal("a failed subscription did not ask for a full sync")
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]runner.Reason{runner.Requested, runner.Requested}, runs); diff != "" {
		t.Errorf("syncs (-want +got):\n%s", diff)
	}
}

func waitSync(t *testing.T, synced <-chan struct{}) {
	t.Helper()
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
		t.Fatal("no sync requested")
	}
}

// TestNetlinkAddressChanges subscribes in a fresh network namespace of the host kernel and
// checks that adding an address to a link there is reported.
func TestNetlinkAddressChanges(t *testing.T) {
	testenv.EnterNetns(t)
	la := netlink.NewLinkAttrs()
	la.Name = "kvs-w0"
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "kvs-w1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}
	here, err := netns.Get() // the test's netns: EnterNetns locked this thread into it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { here.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan addrEvent, 16)
	errc := make(chan error, 1)
	go func() {
		errc <- netlinkAddressChanges(ctx, &here, func(name string, a netip.Addr) { got <- addrEvent{name, a.String()} })
	}()
	t.Cleanup(func() { cancel(); <-errc })
	const want = "192.168.99.1"
	deadline := time.After(10 * time.Second)
	for {
		// Re-add until the subscription (started concurrently) has seen it.
		_ = netlink.AddrDel(veth, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(want), Mask: net.CIDRMask(24, 32)}})
		if err := netlink.AddrAdd(veth, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(want), Mask: net.CIDRMask(24, 32)}}); err != nil {
			t.Fatalf("add address: %v", err)
		}
		select {
		case e := <-got:
			// The callback's goroutine runs outside the test netns: the name it looked up
			// is the host's (or none); the address is what the kernel reported here.
			if e.addr == want {
				return
			}
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no address change %v reported", want)
		}
	}
}

// TestLinkNamesRemembers: a link's name is looked up once per index (a lookup dumps every
// link); an unknown index gives "" and is not remembered; a full table is cleared.
func TestLinkNamesRemembers(t *testing.T) {
	testenv.EnterNetns(t)
	la := netlink.NewLinkAttrs()
	la.Name = "kvs-n0"
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "kvs-n1"}); err != nil { // the host has no dummy links
		t.Fatalf("add link: %v", err)
	}
	l, err := netlink.LinkByName("kvs-n0")
	if err != nil {
		t.Fatal(err)
	}
	idx := l.Attrs().Index
	names := linkNames{}
	if got := names.name(idx); got != "kvs-n0" {
		t.Fatalf("name(%d) = %q, want kvs-n0", idx, got)
	}
	if err := netlink.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	if got := names.name(idx); got != "kvs-n0" {
		t.Errorf("name(%d) after the link went = %q, want the remembered kvs-n0 (no second lookup)", idx, got)
	}
	if got := names.name(1 << 30); got != "" || len(names) != 1 {
		t.Errorf("unknown index: %q, %d names held; want \"\", 1", got, len(names))
	}
	for i := range maxLinkNames {
		names[-1-i] = "x"
	}
	if got := names.name(1); got != "lo" || len(names) != 1 {
		t.Errorf("full table: name(1) = %q with %d names held; want lo, 1", got, len(names))
	}
}
