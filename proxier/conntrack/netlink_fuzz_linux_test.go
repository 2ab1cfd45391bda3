//go:build linux

package conntrack

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

const nlaFNested = 0x8000

// FuzzParseTuple feeds arbitrary bytes to the ctnetlink tuple parser (what the kernel sends is
// trusted, but a parser of raw bytes must not read out of bounds on a short or odd message),
// and checks a round trip: a tuple encoded as the kernel encodes it, with unknown attributes
// around (a newer kernel's), parses back to the same tuple.
func FuzzParseTuple(f *testing.F) {
	f.Add([]byte{}, uint8(6), []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, uint16(1234), uint16(80))
	f.Add([]byte{8, 0, 1, 0x80, 4, 0, 1, 0}, uint8(132), make([]byte, 16), make([]byte, 16), uint16(0), uint16(65535))
	f.Add([]byte{3, 0, 1, 0}, uint8(17), []byte{1, 2, 3}, []byte{1}, uint16(53), uint16(53))
	f.Fuzz(func(t *testing.T, raw []byte, proto uint8, src, dst []byte, sport, dport uint16) {
		got := parseTuple(raw)
		for _, a := range []netip.Addr{got.src.Addr(), got.dst.Addr()} {
			if a.IsValid() && a.BitLen() != 32 && a.BitLen() != 128 {
				t.Fatalf("parseTuple(%x) gave address %v", raw, a)
			}
		}
		n := 0
		eachAttr(raw, func(_ uint16, v []byte) { n += 4 + len(v) })
		if n > len(raw) {
			t.Fatalf("eachAttr(%x) yielded %d bytes of attributes", raw, n)
		}

		if len(src) != len(dst) || (len(src) != 4 && len(src) != 16) || len(raw) > 60000 {
			return
		}
		srcT, dstT := uint16(ctaIPv4Src), uint16(ctaIPv4Dst)
		if len(src) == 16 {
			srcT, dstT = ctaIPv6Src, ctaIPv6Dst
		}
		ip := append(attr(srcT, src), attr(dstT, dst)...)
		ports := attr(ctaProtoNum, []byte{proto})
		ports = append(ports, attr(ctaProtoSrc, binary.BigEndian.AppendUint16(nil, sport))...)
		ports = append(ports, attr(ctaProtoDst, binary.BigEndian.AppendUint16(nil, dport))...)
		msg := attr(99, raw)
		msg = append(msg, attr(ctaTupleIP|nlaFNested, ip)...)
		msg = append(msg, attr(ctaTupleProto|nlaFNested, append(ports, attr(98, raw)...))...)
		msg = append(msg, attr(0, nil)...)
		s, _ := netip.AddrFromSlice(src)
		d, _ := netip.AddrFromSlice(dst)
		want := tuple{proto: proto, src: netip.AddrPortFrom(s, sport), dst: netip.AddrPortFrom(d, dport)}
		if got := parseTuple(msg); got != want {
			t.Fatalf("parseTuple(%x) = %+v, want %+v", msg, got, want)
		}
	})
}
