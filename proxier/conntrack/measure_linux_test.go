//go:build linux

package conntrack

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// TestMeasureBatchedDelete fills a table of KUBEVS_CT_FLOWS flows (default 2,000) from 200
// endpoints and deletes the UDP flows of 20 endpoints, once with one call per endpoint (one
// dump each), once with one Delete of 20 filters (one dump), and once with
// vishvananda/netlink's ConntrackDeleteFilters (one dump; its filters cannot say "reply
// source port", so they match the endpoints' addresses only), and logs the times. It
// runs only with KUBEVS_CT_MEASURE=1: it measures, it asserts only that both delete alike.
func TestMeasureBatchedDelete(t *testing.T) {
	if os.Getenv("KUBEVS_CT_MEASURE") != "1" {
		t.Skip("a measurement: run with KUBEVS_CT_MEASURE=1")
	}
	flows := 2000
	if v := os.Getenv("KUBEVS_CT_FLOWS"); v != "" {
		fmt.Sscan(v, &flows)
	}
	endpoint := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(i%250 + 1)}) }
	fill := func(t *testing.T) {
		var b strings.Builder
		for i := range flows {
			ep := endpoint(i % 200)
			fmt.Fprintf(&b, "-I -p udp -s 10.0.%d.%d -d 10.96.0.10 --sport %d --dport 53 -r %s -q 10.0.%d.%d --reply-port-src 53 --reply-port-dst %d -t 300\n",
				i/250, i%250+1, 1000+i, ep, i/250, i%250+1, 1000+i)
		}
		cmd := exec.Command("conntrack", "-R", "-")
		cmd.Stdin = strings.NewReader(b.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("conntrack -R: %v: %s", err, out)
		}
	}
	var filters []Filter
	for i := range 20 {
		filters = append(filters, Filter{Match: ReplySrc, Proto: ipvs.UDP, Addr: endpoint(i), Port: 53})
	}
	want := flows / 200 * 20
	t.Run("one call per endpoint", func(t *testing.T) {
		testenv.EnterNetns(t)
		fill(t)
		start := time.Now()
		n := 0
		for _, f := range filters {
			d, err := New().DeleteByReplySrc(f.Proto, f.Addr, f.Port)
			if err != nil {
				t.Fatal(err)
			}
			n += d
		}
		t.Logf("%d flows, 20 endpoints, one call each: deleted %d in %v", flows, n, time.Since(start))
		if n != want {
			t.Errorf("deleted %d, want %d", n, want)
		}
	})
	t.Run("vishvananda ConntrackDeleteFilters", func(t *testing.T) {
		testenv.EnterNetns(t)
		fill(t)
		var lib []netlink.CustomConntrackFilter
		for _, f := range filters {
			cf := &netlink.ConntrackFilter{}
			if err := cf.AddProtocol(17); err != nil {
				t.Fatal(err)
			}
			if err := cf.AddIP(netlink.ConntrackReplySrcIP, f.Addr.AsSlice()); err != nil {
				t.Fatal(err)
			}
			lib = append(lib, cf)
		}
		start := time.Now()
		n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, lib...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d flows, 20 endpoints, ConntrackDeleteFilters: deleted %d in %v", flows, n, time.Since(start))
		if int(n) != want {
			t.Errorf("deleted %d, want %d", n, want)
		}
	})
	t.Run("one Delete of 20 filters", func(t *testing.T) {
		testenv.EnterNetns(t)
		fill(t)
		start := time.Now()
		n, err := New().Delete(filters)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d flows, 20 endpoints, one Delete: deleted %d in %v", flows, n, time.Since(start))
		if n != want {
			t.Errorf("deleted %d, want %d", n, want)
		}
	})
}
