package daemon

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// TestLocalIPsCostsOnlyTheIPs: every registration change recomputes the local pod IPs; with
// the store full of registrations of one IP (a caller looping on register) that must cost a
// copy of the one IP, not a walk over 4096 registrations (which made a flood quadratic: about
// 7 minutes for 4096 registrations in the test VM).
func TestLocalIPsCostsOnlyTheIPs(t *testing.T) {
	dir := t.TempDir()
	for i := range nodeapi.MaxRegistrations {
		r := nodeapi.Registration{ContainerID: fmt.Sprintf("flood-%d", i), IfName: "eth0", IPs: []netip.Addr{netip.MustParseAddr("10.244.0.250")}}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, r.ContainerID+"@eth0.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	store, err := nodeapi.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := localIPs(store); len(got) != 1 {
		t.Fatalf("local IPs %v, want the one IP", got)
	}
	if n := testing.AllocsPerRun(10, func() { _ = localIPs(store) }); n > 8 {
		t.Errorf("local IPs of %d registrations of one IP: %v allocations, want a handful", nodeapi.MaxRegistrations, n)
	}
}
