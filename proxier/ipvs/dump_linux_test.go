package ipvs

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// destMsg builds one IPVS_CMD_NEW_DEST message of a dump as the kernel sends it: the
// address in a 16-byte union, the port in network order, the counters and the stats
// nests kubevs does not read.
func destMsg(seq uint32, addr netip.Addr, port uint16, weight, active, inactive uint32, withFamily bool) []byte {
	var dest []byte
	a := make([]byte, 16)
	copy(a, addr.AsSlice())
	dest = appendAttr(dest, ipvsDestAttrAddr, a)
	dest = appendAttr(dest, ipvsDestAttrPort, binary.BigEndian.AppendUint16(nil, port))
	dest = appendAttr(dest, 3, binary.NativeEndian.AppendUint32(nil, 0)) // forwarding method
	dest = appendAttr(dest, ipvsDestAttrWeight, binary.NativeEndian.AppendUint32(nil, weight))
	dest = appendAttr(dest, ipvsDestAttrActiveConns, binary.NativeEndian.AppendUint32(nil, active))
	dest = appendAttr(dest, ipvsDestAttrInactConns, binary.NativeEndian.AppendUint32(nil, inactive))
	dest = appendAttr(dest, 10|0x8000, make([]byte, 36)) // stats, nested
	if withFamily {
		dest = appendAttr(dest, ipvsDestAttrAddrFamily, binary.NativeEndian.AppendUint16(nil, family(addr)))
	}
	body := []byte{5, ipvsGenlVersion, 0, 0} // IPVS_CMD_NEW_DEST
	body = appendAttr(body, ipvsCmdAttrDest|0x8000, dest)
	return nlMsg(0x20, seq, body)
}

func nlMsg(typ uint16, seq uint32, body []byte) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(unix.SizeofNlMsghdr+len(body)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_MULTI)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 4242)
	return append(b, body...)
}

func done(seq uint32, errno int32) []byte {
	return nlMsg(unix.NLMSG_DONE, seq, binary.NativeEndian.AppendUint32(nil, uint32(errno)))
}

func TestParseDestReply(t *testing.T) {
	v4a, v4b := netip.MustParseAddr("10.244.1.2"), netip.MustParseAddr("10.244.1.3")
	v6 := netip.MustParseAddr("fd00:10:244::7")
	for _, tc := range []struct {
		name    string
		bufs    [][]byte
		v4      bool
		want    []RealServer
		wantErr error
	}{{
		name: "two real servers, then the end in another read",
		bufs: [][]byte{append(destMsg(7, v4a, 8080, 1, 3, 4, true), destMsg(7, v4b, 8080, 0, 0, 9, true)...), done(7, 0)},
		v4:   true,
		want: []RealServer{{Address: v4a, Port: 8080, Weight: 1, ActiveConns: 3, InactiveConns: 4}, {Address: v4b, Port: 8080, Weight: 0, InactiveConns: 9}},
	}, {
		name: "an old kernel without the address family attribute: the virtual server's",
		bufs: [][]byte{append(destMsg(7, v6, 53, 2, 0, 0, false), done(7, 0)...)},
		want: []RealServer{{Address: v6, Port: 53, Weight: 2}},
	}, {
		name: "an empty dump (no real server, or no such virtual server)",
		bufs: [][]byte{done(7, 0)},
		v4:   true,
	}, {
		name: "a late answer to an earlier request is skipped",
		bufs: [][]byte{append(destMsg(6, v4b, 1, 1, 0, 0, true), done(6, 0)...), append(destMsg(7, v4a, 80, 1, 0, 0, true), done(7, 0)...)},
		v4:   true,
		want: []RealServer{{Address: v4a, Port: 80, Weight: 1}},
	}, {
		name:    "the kernel refused the request",
		bufs:    [][]byte{nlMsg(unix.NLMSG_ERROR, 7, binary.NativeEndian.AppendUint32(nil, uint32(0xffffffff-uint32(unix.EBUSY)+1)))},
		v4:      true,
		wantErr: unix.EBUSY,
	}, {
		name:    "the dump ended with an error",
		bufs:    [][]byte{done(7, -int32(unix.EMSGSIZE))},
		v4:      true,
		wantErr: unix.EMSGSIZE,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var got []RealServer
			var fin bool
			var err error
			for i, b := range tc.bufs {
				if fin {
					t.Fatalf("done before read %d", i)
				}
				got, fin, err = parseDestReply(b, 7, tc.v4, got)
				if err != nil {
					break
				}
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || !fin {
				t.Fatalf("done %v, error %v", fin, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("real servers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDestReplyRefusesBadLengths(t *testing.T) {
	good := destMsg(7, netip.MustParseAddr("10.0.0.1"), 80, 1, 0, 0, true)
	for name, b := range map[string][]byte{
		"short header":             good[:10],
		"message longer than read": good[:len(good)-4],
		"attribute past its message": func() []byte {
			b := append([]byte(nil), good...)
			binary.NativeEndian.PutUint16(b[unix.SizeofNlMsghdr+genlHdrLen:], 0xfff0)
			return b
		}(),
	} {
		if _, _, err := parseDestReply(b, 7, true, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The request names the virtual server as the kernel looks it up (ip_vs_genl_parse_service
// without the full entry): family, protocol, address and port, nested in the service
// attribute, after a dump request's header and IPVS_CMD_GET_DEST.
func TestAppendGetDest(t *testing.T) {
	k := Key{Address: netip.MustParseAddr("10.96.0.10"), Protocol: UDP, Port: 53}
	b, err := appendGetDest(nil, 0x1c, 9, k)
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.NativeEndian.Uint32(b); int(n) != len(b) {
		t.Fatalf("nlmsg_len %d of %d bytes", n, len(b))
	}
	if typ, flags, seq := binary.NativeEndian.Uint16(b[4:]), binary.NativeEndian.Uint16(b[6:]), binary.NativeEndian.Uint32(b[8:]); typ != 0x1c || flags != unix.NLM_F_REQUEST|unix.NLM_F_DUMP || seq != 9 {
		t.Errorf("header type %#x flags %#x seq %d", typ, flags, seq)
	}
	if cmd := b[unix.SizeofNlMsghdr]; cmd != ipvsCmdGetDest {
		t.Errorf("command %d", cmd)
	}
	var svc []byte
	if err := walkAttrs(b[unix.SizeofNlMsghdr+genlHdrLen:], func(typ uint16, v []byte) {
		if typ == ipvsCmdAttrService {
			svc = v
		}
	}); err != nil {
		t.Fatal(err)
	}
	got := map[uint16][]byte{}
	if err := walkAttrs(svc, func(typ uint16, v []byte) { got[typ] = v }); err != nil {
		t.Fatal(err)
	}
	want := map[uint16][]byte{
		ipvsSvcAttrAF:       binary.NativeEndian.AppendUint16(nil, unix.AF_INET),
		ipvsSvcAttrProtocol: binary.NativeEndian.AppendUint16(nil, unix.IPPROTO_UDP),
		ipvsSvcAttrAddr:     {10, 96, 0, 10},
		ipvsSvcAttrPort:     {0, 53},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("service attributes (-want +got):\n%s", diff)
	}
	if _, err := appendGetDest(nil, 0x1c, 9, Key{Protocol: TCP, Port: 80}); err == nil {
		t.Error("no error for a key without an address")
	}
}

// FuzzParseDestReply: any bytes from the socket give real servers or an error, never a
// panic, and never a real server without an address.
func FuzzParseDestReply(f *testing.F) {
	f.Add(append(destMsg(7, netip.MustParseAddr("10.1.2.3"), 80, 1, 2, 3, true), done(7, 0)...), true)
	f.Add(destMsg(7, netip.MustParseAddr("fd00::1"), 80, 1, 2, 3, false), false)
	f.Add(done(7, -5), true)
	f.Fuzz(func(t *testing.T, b []byte, v4 bool) {
		out, _, _ := parseDestReply(b, 7, v4, nil)
		for _, rs := range out {
			if !rs.Address.IsValid() {
				t.Fatalf("real server without an address: %+v", rs)
			}
		}
	})
}
