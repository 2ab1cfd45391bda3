package ipvs

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/proxier/internal/nlreply"
)

// svcMsg builds one IPVS_CMD_NEW_SERVICE message of a dump as the kernel sends it: the
// address in a 16-byte union, the port in network order, the scheduler NUL-terminated, the
// flags with their mask, the old stats nest (32-bit connections and packets) and the
// 64-bit one; wide32 sets the old nest to different counters, to tell which was read.
func svcMsg(seq uint32, s *libipvs.Service, st Stats) []byte {
	var svc []byte
	u16 := func(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
	u32 := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
	svc = appendAttr(svc, ipvsSvcAttrAF, u16(s.AddressFamily))
	if s.FWMark != 0 {
		svc = appendAttr(svc, ipvsSvcAttrFWMark, u32(s.FWMark))
	} else {
		svc = appendAttr(svc, ipvsSvcAttrProtocol, u16(s.Protocol))
		a := make([]byte, 16)
		copy(a, s.Address.To16())
		if s.AddressFamily == unix.AF_INET {
			copy(a, s.Address.To4())
		}
		svc = appendAttr(svc, ipvsSvcAttrAddr, a)
		svc = appendAttr(svc, ipvsSvcAttrPort, binary.BigEndian.AppendUint16(nil, s.Port))
	}
	svc = appendAttr(svc, ipvsSvcAttrSchedName, append([]byte(s.SchedName), 0))
	svc = appendAttr(svc, ipvsSvcAttrFlags, append(u32(s.Flags), u32(0xFFFFFFFF)...))
	svc = appendAttr(svc, ipvsSvcAttrTimeout, u32(s.Timeout))
	svc = appendAttr(svc, 9, u32(s.Netmask)) // netmask
	var old, wide []byte
	old = appendAttr(old, ipvsStatsAttrConns, u32(uint32(st.Connections)))
	old = appendAttr(old, ipvsStatsAttrInPkts, u32(uint32(st.PacketsIn)))
	old = appendAttr(old, ipvsStatsAttrOutPkts, u32(uint32(st.PacketsOut)))
	old = appendAttr(old, ipvsStatsAttrInBytes, u64(st.BytesIn))
	old = appendAttr(old, ipvsStatsAttrOutBytes, u64(st.BytesOut))
	old = appendAttr(old, 6, u32(1)) // cps
	for typ, v := range []uint64{st.Connections, st.PacketsIn, st.PacketsOut, st.BytesIn, st.BytesOut, 1} {
		wide = appendAttr(wide, uint16(typ+1), u64(v))
	}
	svc = appendAttr(svc, ipvsSvcAttrStats|0x8000, old)
	svc = appendAttr(svc, ipvsSvcAttrStats64|0x8000, wide)
	body := []byte{1, ipvsGenlVersion, 0, 0} // IPVS_CMD_NEW_SERVICE
	body = appendAttr(body, ipvsCmdAttrService|0x8000, svc)
	return nlMsg(0x20, seq, body)
}

// TestParseServiceDump: a dump of several services, across two receives, decodes to what
// was programmed (the kernel's hashed flag ignored, the timeout only with persistence) with
// the 64-bit counters; a firewall-mark service is left out.
func TestParseServiceDump(t *testing.T) {
	big := uint64(1) << 33 // beyond 32 bits
	in := []VirtualServer{
		{Key: Key{netip.MustParseAddr("10.96.0.1"), TCP, 443}, Scheduler: "rr"},
		{Key: Key{netip.MustParseAddr("10.96.0.10"), UDP, 53}, Scheduler: "wrr", Persistent: true, Timeout: 10800},
		{Key: Key{netip.MustParseAddr("fd00::1"), SCTP, 9}, Scheduler: "mh", Persistent: true, Timeout: 60},
		{Key: Key{netip.MustParseAddr("fd00::2"), TCP, 80}, Scheduler: "my-own"},
	}
	var msgs []byte
	for i, vs := range in {
		s, err := toService(vs)
		if err != nil {
			t.Fatal(err)
		}
		s.Flags |= 0x2 // hashed, as the kernel answers
		s.Timeout = 77 // sent even without persistence
		if vs.Persistent {
			s.Timeout = vs.Timeout
		}
		msgs = append(msgs, svcMsg(7, s, Stats{Connections: big + uint64(i), PacketsIn: 2, PacketsOut: 3, BytesIn: 4, BytesOut: 5})...)
	}
	msgs = append(msgs, svcMsg(7, &libipvs.Service{FWMark: 9, AddressFamily: unix.AF_INET, SchedName: "rr"}, Stats{})...)
	var got []VirtualServer
	var stats []Stats
	fn := func(_ uint16, msg []byte) error {
		vs, st, ok, err := parseService(msg)
		if ok {
			got, stats = append(got, vs), append(stats, st)
		}
		return err
	}
	half := len(msgs) / 2
	half -= half % 4
	// Split on a message boundary: find the first one past the middle.
	cut := 0
	for cut < half {
		cut += nlmAlign(int(binary.NativeEndian.Uint32(msgs[cut:])))
	}
	if done, _, err := nlreply.Walk(msgs[:cut], 7, "test", fn); done || err != nil {
		t.Fatalf("first part: done %v, %v", done, err)
	}
	rest := append(append([]byte{}, msgs[cut:]...), nlMsg(unix.NLMSG_DONE, 7, make([]byte, 4))...)
	if done, _, err := nlreply.Walk(rest, 7, "test", fn); !done || err != nil {
		t.Fatalf("second part: done %v, %v", done, err)
	}
	if d := cmp.Diff(in, got, addrs); d != "" {
		t.Errorf("virtual servers (-programmed +decoded):\n%s", d)
	}
	for i, st := range stats {
		if want := (Stats{Connections: big + uint64(i), PacketsIn: 2, PacketsOut: 3, BytesIn: 4, BytesOut: 5}); st != want {
			t.Errorf("stats of %s = %+v, want %+v (the 64-bit nest)", got[i].Key, st, want)
		}
	}
}

// FuzzParseService: any message decodes or fails, never panics; what it keeps has an address.
func FuzzParseService(f *testing.F) {
	s, _ := toService(VirtualServer{Key: Key{netip.MustParseAddr("10.96.0.1"), TCP, 80}, Scheduler: "rr", Persistent: true, Timeout: 5})
	f.Add(svcMsg(1, s, Stats{Connections: 1})[unix.SizeofNlMsghdr:])
	f.Add([]byte{1, 1, 0, 0, 8, 0, 1, 0x80, 6, 0, 1, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		vs, _, ok, err := parseService(msg)
		if ok && (err != nil || !vs.Address.IsValid() || vs.Address.Is4In6()) {
			t.Fatalf("kept %v (err %v)", vs, err)
		}
	})
}
