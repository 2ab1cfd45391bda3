package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/internal/testenv"
)

func TestNewDoDelete(t *testing.T) {
	testenv.RequireRoot(t)
	name := fmt.Sprintf("kvs-netns-test-%d", os.Getpid())
	n, err := New(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Delete() })

	if _, err := New(name); !errors.Is(err, os.ErrExist) {
		t.Errorf("second New(%q) = %v, want an error wrapping os.ErrExist", name, err)
	}
	var got []string
	err = n.Do(func(ns.NetNS) error {
		links, err := netlink.LinkList()
		for _, l := range links {
			got = append(got, fmt.Sprintf("%s up=%t", l.Attrs().Name, l.Attrs().Flags&1 != 0))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"lo up=true"}, got); diff != "" {
		t.Errorf("links in a new namespace (-want +got):\n%s", diff)
	}

	if err := n.Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := n.Delete(); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(Dir, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns file still there after Delete: %v", err)
	}
}
