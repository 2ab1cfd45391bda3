package testenv

import (
	"os"
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

// The namespace's path must name the new namespace for other processes, not the creating
// thread's current one.
func TestNewNetnsPathNamesTheNewNamespace(t *testing.T) {
	n := NewNetns(t)
	here, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	there, err := os.Readlink(n.Path())
	if err != nil {
		t.Fatalf("read %s: %v", n.Path(), err)
	}
	if here == there {
		t.Fatalf("%s names the test's own namespace %s", n.Path(), here)
	}
}
