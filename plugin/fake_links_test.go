package plugin

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// fakeLinks models the kernel as the plugin sees it: named network namespaces holding pod
// interfaces, each maybe a veth whose host end is maybe a bridge port.
type fakeLinks struct {
	mu      sync.Mutex
	netns   map[string]map[string]PodLink // netns path -> ifname -> link
	on      map[string]bool               // bridge ports (host ifnames) with hairpin on
	hairpin []string                      // SetHairpin calls, in order
}

func newFakeLinks() *fakeLinks {
	return &fakeLinks{netns: map[string]map[string]PodLink{}, on: map[string]bool{}}
}

func (f *fakeLinks) addPod(netns string, pl PodLink) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.netns[netns] == nil {
		f.netns[netns] = map[string]PodLink{}
	}
	f.netns[netns][pl.IfName] = pl
}

func (f *fakeLinks) Inspect(netnsPath, ifName string) (PodLink, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ifs, ok := f.netns[netnsPath]
	if !ok {
		return PodLink{}, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("netns %q: not a network namespace", netnsPath), "")
	}
	pl, ok := ifs[ifName]
	if !ok {
		return PodLink{}, fmt.Errorf("pod interface %s: %w", ifName, ErrNoInterface)
	}
	pl.IPs = slices.Clone(pl.IPs)
	return pl, nil
}

func (f *fakeLinks) SetHairpin(host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.bridgePort(host); err != nil {
		return err
	}
	f.on[host] = true
	f.hairpin = append(f.hairpin, host)
	return nil
}

func (f *fakeLinks) Hairpin(host string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.bridgePort(host); err != nil {
		return false, err
	}
	return f.on[host], nil
}

// bridgePort checks that host is the host end of a pod veth on a bridge, as the kernel would.
func (f *fakeLinks) bridgePort(host string) error {
	for _, ifs := range f.netns {
		for _, pl := range ifs {
			if pl.HostIfName == host {
				if pl.Bridge == "" {
					return fmt.Errorf("hairpin of %s: not a bridge port", host)
				}
				return nil
			}
		}
	}
	return fmt.Errorf("find bridge port %s: link not found", host)
}

func TestFakeLinks(t *testing.T) {
	f := newFakeLinks()
	f.addPod("/ns/a", PodLink{IfName: "eth0", HostIfName: "veth-a", Bridge: "cni0"})
	f.addPod("/ns/b", PodLink{IfName: "eth0", HostIfName: "veth-b"})
	if _, err := f.Inspect("/ns/none", "eth0"); err == nil {
		t.Error("Inspect of an unknown netns succeeded")
	}
	if _, err := f.Inspect("/ns/a", "eth1"); !errors.Is(err, ErrNoInterface) {
		t.Errorf("Inspect of a missing interface = %v, want ErrNoInterface", err)
	}
	if err := f.SetHairpin("veth-b"); err == nil {
		t.Error("SetHairpin on a routed veth succeeded")
	}
	if err := f.SetHairpin("nope"); err == nil {
		t.Error("SetHairpin on a missing link succeeded")
	}
	if on, err := f.Hairpin("veth-a"); err != nil || on {
		t.Errorf("Hairpin before SetHairpin = %v, %v; want false, nil", on, err)
	}
	if _, err := f.Hairpin("veth-b"); err == nil {
		t.Error("Hairpin of a routed veth succeeded")
	}
	if err := f.SetHairpin("veth-a"); err != nil {
		t.Fatal(err)
	}
	if on, err := f.Hairpin("veth-a"); err != nil || !on {
		t.Errorf("Hairpin after SetHairpin = %v, %v; want true, nil", on, err)
	}
}
