package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/link"
)

// kube-ipvs0 deleted behind the proxier's back: the link watch's event makes a full sync
// create it again and bind the VIPs at once, not at the next periodic resync (30 s).
func TestLostDummyLinkIsRepairedAtOnce(t *testing.T) {
	k := newFakeKernel()
	events := make(chan struct{})
	watch := func(ctx context.Context, name string, lost func()) error {
		if name != link.DefaultDummy {
			t.Errorf("watching %q, want %q", name, link.DefaultDummy)
		}
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-events:
				lost()
			}
		}
	}
	cfg := testConfig(t)
	h := startWithOptions(t, Options{Kernel: k.kernel(), Config: cfg, LinkChanges: watch},
		service("web", "10.96.0.10", 80), slice("web", "node-b", "10.244.2.5"))
	want := "kube-ipvs0 dummy up\n  10.96.0.10/32\n"
	eventually(t, "the VIP", func() bool { return k.link.Dump() == want && h.d.Ready() })
	must(t, k.link.Remove(link.DefaultDummy))
	start := time.Now()
	events <- struct{}{}
	eventually(t, "the dummy link and its VIP back", func() bool { return k.link.Dump() == want })
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("repair took %s", d)
	} else {
		t.Logf("dummy link and VIP back %s after the event", d.Round(time.Millisecond))
	}
	eventually(t, "the drift metric", func() bool { return gather(t, h.m)[`kubevs_drift_repaired_total{object="vips"}`] == 1 })
}

// netlinkLinkChanges in a fresh netns of the host kernel reports the watched link set down
// and deleted, and nothing for another link.
func TestNetlinkLinkChanges(t *testing.T) {
	testenv.EnterNetns(t)
	here, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { here.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	lost := make(chan struct{}, 64)
	errc := make(chan error, 1)
	go func() { errc <- netlinkLinkChanges(ctx, &here, "kvs-l0", func() { lost <- struct{}{} }) }()
	t.Cleanup(func() { cancel(); <-errc })
	la := netlink.NewLinkAttrs()
	la.Name = "kvs-l0"
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "kvs-l1"}
	deadline := time.After(10 * time.Second)
	// The subscription starts concurrently: make the link lost again until it is seen.
	for seen := false; !seen; {
		_ = netlink.LinkDel(veth)
		if err := netlink.LinkAdd(veth); err != nil {
			t.Fatalf("add veth: %v", err)
		}
		must(t, netlink.LinkSetUp(veth))
		must(t, netlink.LinkSetDown(veth))
		select {
		case <-lost:
			seen = true
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("the link set down was not reported")
		}
	}
	// The subscription is up: deleting the link is reported.
	must(t, netlink.LinkSetUp(veth))
	time.Sleep(100 * time.Millisecond)
	for len(lost) > 0 {
		<-lost
	}
	must(t, netlink.LinkDel(veth))
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the deleted link was not reported")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
