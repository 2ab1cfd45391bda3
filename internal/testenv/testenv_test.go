package testenv

import (
	"testing"

	"github.com/vishvananda/netlink"
)

func TestInNetnsIsFreshAndLoopbackUp(t *testing.T) {
	InNetns(t, func() {
		links, err := netlink.LinkList()
		if err != nil {
			t.Fatalf("list links: %v", err)
		}
		if len(links) != 1 || links[0].Attrs().Name != "lo" {
			t.Fatalf("fresh namespace should hold only lo, got %d links", len(links))
		}
		if links[0].Attrs().Flags&1 == 0 {
			t.Fatalf("lo is down")
		}
	})
}
