package ipvs

// The virtual servers' dump, decoded in place over destReader's socket and buffers: moby/ipvs
// opened each answer in a fresh 64 KiB buffer and decoded every attribute into new slices,
// so listing 10,000 virtual servers (every periodic resync, every scrape of the per-Service
// counters) took 1.3-1.9 s in the emulated test VM (BenchmarkScale10k).

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/proxier/internal/nlreply"
)

// IPVS numbers from include/uapi/linux/ip_vs.h.
const (
	ipvsCmdGetService = 4

	ipvsSvcAttrFWMark    = 5
	ipvsSvcAttrSchedName = 6
	ipvsSvcAttrFlags     = 7
	ipvsSvcAttrTimeout   = 8
	ipvsSvcAttrStats     = 10
	ipvsSvcAttrStats64   = 12

	ipvsStatsAttrConns    = 1
	ipvsStatsAttrInPkts   = 2
	ipvsStatsAttrOutPkts  = 3
	ipvsStatsAttrInBytes  = 4
	ipvsStatsAttrOutBytes = 5
)

// schedulers are the kernel's scheduler names, so that decoding one allocates nothing.
var schedulers = map[string]string{}

func init() {
	for _, s := range []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"} {
		schedulers[s] = s
	}
}

// services dumps every virtual server and calls fn with each one kubevs can describe (see
// fromService: firewall-mark services are left out) and its counters.
func (d *destReader) services(fn func(VirtualServer, Stats)) error {
	d.seq++
	d.req = appendGetServices(d.req[:0], d.family, d.seq)
	return d.dump("virtual servers' dump", func(b []byte) (bool, error) {
		done, _, err := nlreply.Walk(b, d.seq, "virtual servers' dump", func(_ uint16, msg []byte) error {
			vs, st, ok, err := parseService(msg)
			if ok {
				fn(vs, st)
			}
			return err
		})
		return done, err
	})
}

// appendGetServices appends to b an IPVS_CMD_GET_SERVICE dump request.
func appendGetServices(b []byte, genlID uint16, seq uint32) []byte {
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0) // nlmsg_len, set below
	b = binary.NativeEndian.AppendUint16(b, genlID)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, ipvsCmdGetService, ipvsGenlVersion, 0, 0)
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// parseService decodes one IPVS_CMD_NEW_SERVICE message (the genl header, then the nested
// service). ok is false for a service kubevs cannot describe: a firewall mark, an unknown
// protocol, no address. Counters come from the 64-bit nest when the kernel sends it.
func parseService(msg []byte) (vs VirtualServer, st Stats, ok bool, err error) {
	if len(msg) < genlHdrLen {
		return vs, st, false, errors.New("virtual server: " + errTruncatedDestReplyMsg)
	}
	var svc []byte
	if err := walkAttrs(msg[genlHdrLen:], func(typ uint16, v []byte) {
		if typ == ipvsCmdAttrService {
			svc = v
		}
	}); err != nil {
		return vs, st, false, err
	}
	var (
		af, proto   uint16
		addr        []byte
		fwmark      uint32
		flags       uint32
		timeout     uint32
		stats, st64 []byte
		hasPort     bool
	)
	err = walkAttrs(svc, func(typ uint16, v []byte) {
		switch {
		case typ == ipvsSvcAttrAF && len(v) >= 2:
			af = binary.NativeEndian.Uint16(v)
		case typ == ipvsSvcAttrProtocol && len(v) >= 2:
			proto = binary.NativeEndian.Uint16(v)
		case typ == ipvsSvcAttrAddr:
			addr = v
		case typ == ipvsSvcAttrPort && len(v) >= 2:
			vs.Port, hasPort = binary.BigEndian.Uint16(v), true
		case typ == ipvsSvcAttrFWMark && len(v) >= 4:
			fwmark = binary.NativeEndian.Uint32(v)
		case typ == ipvsSvcAttrSchedName:
			name := v
			if i := bytesIndexZero(v); i >= 0 {
				name = v[:i]
			}
			if s, known := schedulers[string(name)]; known {
				vs.Scheduler = s
			} else {
				vs.Scheduler = string(name)
			}
		case typ == ipvsSvcAttrFlags && len(v) >= 4:
			flags = binary.NativeEndian.Uint32(v)
		case typ == ipvsSvcAttrTimeout && len(v) >= 4:
			timeout = binary.NativeEndian.Uint32(v)
		case typ == ipvsSvcAttrStats:
			stats = v
		case typ == ipvsSvcAttrStats64:
			st64 = v
		}
	})
	if err != nil {
		return VirtualServer{}, st, false, err
	}
	if fwmark != 0 || !hasPort {
		return VirtualServer{}, st, false, nil
	}
	switch proto {
	case unix.IPPROTO_TCP:
		vs.Protocol = TCP
	case unix.IPPROTO_UDP:
		vs.Protocol = UDP
	case unix.IPPROTO_SCTP:
		vs.Protocol = SCTP
	default:
		return VirtualServer{}, st, false, nil
	}
	switch {
	case af == unix.AF_INET && len(addr) >= 4:
		vs.Address = netip.AddrFrom4([4]byte(addr[:4]))
	case af == unix.AF_INET6 && len(addr) >= 16:
		vs.Address = netip.AddrFrom16([16]byte(addr[:16])).Unmap()
	default:
		return VirtualServer{}, st, false, nil
	}
	if flags&svcFlagPersistent != 0 {
		vs.Persistent, vs.Timeout = true, timeout
	}
	if st64 != nil {
		st, err = parseStats(st64, true)
	} else if stats != nil {
		st, err = parseStats(stats, false)
	}
	if err != nil {
		return VirtualServer{}, Stats{}, false, err
	}
	return vs, st, true, nil
}

// parseStats decodes a stats nest: in the 64-bit one every counter is 64 bits; in the old one
// connections and packets are 32.
func parseStats(b []byte, wide bool) (st Stats, err error) {
	err = walkAttrs(b, func(typ uint16, v []byte) {
		var n uint64
		switch {
		case len(v) >= 8 && (wide || typ == ipvsStatsAttrInBytes || typ == ipvsStatsAttrOutBytes):
			n = binary.NativeEndian.Uint64(v)
		case len(v) >= 4:
			n = uint64(binary.NativeEndian.Uint32(v))
		default:
			return
		}
		switch typ {
		case ipvsStatsAttrConns:
			st.Connections = n
		case ipvsStatsAttrInPkts:
			st.PacketsIn = n
		case ipvsStatsAttrOutPkts:
			st.PacketsOut = n
		case ipvsStatsAttrInBytes:
			st.BytesIn = n
		case ipvsStatsAttrOutBytes:
			st.BytesOut = n
		}
	})
	return st, err
}

func bytesIndexZero(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}
