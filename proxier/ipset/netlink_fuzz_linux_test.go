//go:build linux

package ipset

import (
	"net/netip"
	"testing"
)

// encodeMember is the body of the IPSET_ATTR_DATA putMember writes, as parseMember reads it.
func encodeMember(m member, comment string) []byte {
	var a attrs
	a.putMember(m, comment)
	return a[4:]
}

var fuzzTypes = []Type{HashIP, HashNet, BitmapPort, HashIPPort, HashIPPortIP, HashIPPortNet}

// FuzzCanonical feeds arbitrary entries to the entry parser (entries come from Services and
// from `ipset list` of a set another tool touched). An accepted entry's canonical form is
// canonical again, and its member crosses the netlink encoder and parser unchanged, comment
// included, so what kubevs writes and what it reads back compare equal.
func FuzzCanonical(f *testing.F) {
	f.Add(uint8(4), false, "10.244.0.2,tcp:8080,10.244.0.2", "c")
	f.Add(uint8(3), false, "10.96.0.10,UDP:53", "")
	f.Add(uint8(1), true, "fd00::1/64", "x")
	f.Add(uint8(2), false, "30080", "")
	f.Add(uint8(5), true, "2001:db8::5,sctp:80,::ffff:1.2.3.4/100", "")
	f.Add(uint8(3), false, "1.2.3.4,icmp:8/0", "")
	f.Fuzz(func(t *testing.T, typ uint8, v6 bool, e, comment string) {
		s := Set{Name: "S", Type: fuzzTypes[int(typ)%len(fuzzTypes)], Family: IPv4, PortFrom: 30000, PortTo: 32767}
		if v6 {
			s.Family = IPv6
		}
		c, err := Canonical(s, Entry(e))
		if err != nil {
			return
		}
		if c2, err := Canonical(s, c); err != nil || c2 != c {
			t.Fatalf("%s: Canonical(%q) = %q, and of that %q, %v", s.Type, e, c, c2, err)
		}
		m, err := parseEntry(s, c)
		if err != nil {
			t.Fatal(err)
		}
		comment = cString([]byte(comment))
		back, gotComment, err := parseMember(encodeMember(m, comment))
		if err != nil || back != m || gotComment != comment {
			t.Fatalf("%s %q: member %+v comment %q crosses netlink as %+v %q, %v", s.Type, c, m, comment, back, gotComment, err)
		}
		if back.entry() != c {
			t.Fatalf("%s: %q reads back from netlink as %q", s.Type, c, back.entry())
		}
	})
}

// FuzzParseMember feeds arbitrary bytes to the parser of `ipset list` replies: no panic, and
// a member it returns, once encoded, parses back to itself.
func FuzzParseMember(f *testing.F) {
	for _, m := range []member{
		{ip: netip.MustParseAddr("10.0.0.1"), cidr: -1, cidr2: -1, proto: 6, port: 80, hasPort: true},
		{ip: netip.MustParseAddr("fd00::"), cidr: 64, cidr2: -1},
		{cidr: -1, cidr2: -1, port: 30080, hasPort: true},
	} {
		f.Add(encodeMember(m, "kubevs"))
	}
	f.Add([]byte{5, 0, 1, 0x80, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, comment, err := parseMember(b)
		if err != nil {
			return
		}
		_ = m.entry()
		again, c2, err := parseMember(encodeMember(m, comment))
		if err != nil {
			t.Fatalf("parse of the re-encoded member %+v: %v", m, err)
		}
		third, c3, err := parseMember(encodeMember(again, c2))
		if err != nil || third != again || c3 != c2 {
			t.Fatalf("member %+v %q is not stable through netlink: %+v %q, %v", again, c2, third, c3, err)
		}
	})
}
