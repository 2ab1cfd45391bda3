//go:build vmlink

package vm

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"

	"github.com/kubevs/kubevs/internal/testenv"
)

// TestTwoGuestsShareALink boots two guests whose Links are crossed and has each ping the
// other over eth0: the segment the two-node scenarios put their nodes on. Each guest waits
// for the other's verdict in a shared folder before it stops, so neither stops answering
// while the other still pings. Run it with `go test -tags vmlink -run TestTwoGuestsShareALink
// ./test/vm` as root (two guests of 512 MiB; 1-4 min under TCG).
func TestTwoGuestsShareALink(t *testing.T) {
	testenv.RequireRoot(t)
	_, ctx := ktesting.NewTestContext(t)
	root, err := DefaultCacheRoot()
	if err != nil {
		t.Fatal(err)
	}
	img, err := Prepare(ctx, root)
	if err != nil {
		t.Fatalf("prepare image: %v", err)
	}
	p1, p2 := freeUDPPort(t), freeUDPPort(t)
	share := t.TempDir()
	guest := func(self, peer string) string {
		return fmt.Sprintf(`set -e
ip link set eth0 up
ip addr add %[1]s/24 dev eth0
i=0
until busybox ping -c 1 -W 1 %[2]s >/dev/null 2>&1; do
	i=$((i+1)); [ $i -lt 300 ] || { echo "no answer from %[2]s"; ip -s link show eth0; exit 1; }
done
echo "%[1]s reached %[2]s after $i misses"
ip -s link show eth0
touch /shared/%[1]s
i=0
until [ -e /shared/%[2]s ]; do i=$((i+1)); [ $i -lt 600 ] || exit 2; sleep 0.5; done
`, self, peer)
	}
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 2)
	errs := make([]error, 2)
	codes := make([]int, 2)
	for i, g := range []struct {
		link       *Link
		self, peer string
	}{
		{&Link{Local: p1, Peer: p2}, "10.99.0.1", "10.99.0.2"},
		{&Link{Local: p2, Peer: p1}, "10.99.0.2", "10.99.0.1"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := Run(ctx, Options{
				Image: img, Command: []string{"sh", "-c", guest(g.self, g.peer)},
				Shares: []Share{{HostDir: share, GuestDir: "/shared"}}, Link: g.link,
				MemoryMiB: 512, CPUs: 1, Timeout: 10 * time.Minute, Stdout: &outs[i],
			})
			errs[i], codes[i] = err, res.ExitCode
			t.Logf("guest %s: boot %s, total %s", g.self, res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil || codes[i] != 0 {
			t.Errorf("guest %d: exit %d, %v; output:\n%s", i+1, codes[i], errs[i], outs[i].String())
		} else {
			t.Logf("guest %d:\n%s", i+1, outs[i].String())
		}
	}
}

// freeUDPPort returns a UDP port on 127.0.0.1 nobody holds now.
func freeUDPPort(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
