package reconcile

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustAddr(s string) netip.Addr   { return netip.MustParseAddr(s) }
func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// mustKey parses "TCP:10.96.0.10:80".
func mustKey(s string) ipvs.Key {
	proto, ap, _ := strings.Cut(s, ":")
	a := netip.MustParseAddrPort(ap)
	return ipvs.Key{Address: a.Addr(), Protocol: ipvs.Protocol(proto), Port: a.Port()}
}

func mustVS(s string) ipvs.VirtualServer { return ipvs.VirtualServer{Key: mustKey(s), Scheduler: "rr"} }

func rsAt(s string, w int32) ipvs.RealServer {
	ap := mustAP(s)
	return ipvs.RealServer{Address: ap.Addr(), Port: ap.Port(), Weight: w}
}

func mustPrefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func setNamed(n string) ipset.Set { return ipset.Set{Name: n, Type: ipset.HashIP, Family: ipset.IPv4} }
