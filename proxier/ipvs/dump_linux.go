package ipvs

// A periodic resync lists the real servers of every virtual server: one dump per virtual
// server, the only way the kernel answers IPVS_CMD_GET_DEST. moby/ipvs opens each answer in
// a fresh 64 KiB buffer (two per dump) and decodes attributes into slices, so at 10,000
// virtual servers a read churned over a GiB through the allocator and the garbage
// collector. destReader asks the same question over a socket of its own with one request
// buffer and one receive buffer reused for every dump, and decodes the answer in place.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/proxier/internal/nlreply"
)

// Generic netlink and IPVS numbers from include/uapi/linux/{genetlink,ip_vs}.h.
const (
	genlHdrLen      = 4
	ipvsGenlVersion = 1
	ipvsCmdNewDest  = 5
	ipvsCmdGetDest  = 8
	ipvsConnFMasq   = 0 // IP_VS_CONN_F_MASQ

	ipvsCmdAttrService = 1
	ipvsCmdAttrDest    = 2

	ipvsSvcAttrAF       = 1
	ipvsSvcAttrProtocol = 2
	ipvsSvcAttrAddr     = 3
	ipvsSvcAttrPort     = 4

	ipvsDestAttrAddr        = 1
	ipvsDestAttrPort        = 2
	ipvsDestAttrFwdMethod   = 3
	ipvsDestAttrWeight      = 4
	ipvsDestAttrUThresh     = 5
	ipvsDestAttrLThresh     = 6
	ipvsDestAttrActiveConns = 7
	ipvsDestAttrInactConns  = 8
	ipvsDestAttrAddrFamily  = 11

	nlaTypeMask = 0x3fff // NLA_TYPE_MASK: without NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

// The receive buffer holds any one answer (the kernel fills at most 32 KiB a read); a read
// that gets nothing for destRecvTimeout fails rather than hang the resync.
const (
	destRecvBufSize          = 64 << 10
	destRecvTimeout          = 30 * time.Second
	errTruncatedDestReplyMsg = "truncated reply"
)

// destReader dumps the real servers of one virtual server at a time over its own generic
// netlink socket. It is not safe for concurrent use (linuxIPVS holds its lock around it).
type destReader struct {
	fd     int
	family uint16 // the IPVS generic netlink family's id
	seq    uint32
	req    []byte
	buf    []byte
}

// newDestReader opens the socket in the calling thread's network namespace.
func newDestReader(family uint16) (*destReader, error) {
	fd, err := nlreply.Open(unix.NETLINK_GENERIC, "generic netlink", destRecvTimeout, nil)
	if err != nil {
		return nil, err
	}
	return &destReader{fd: fd, family: family, buf: make([]byte, destRecvBufSize)}, nil
}

// close releases the socket; an error closing a netlink socket leaves nothing to undo.
func (d *destReader) close() { _ = unix.Close(d.fd) }

// realServers dumps k's real servers. An absent k answers like one with no real server:
// the caller tells them apart.
func (d *destReader) realServers(k Key) ([]RealServer, error) {
	d.seq++
	var err error
	if d.req, err = appendGetDest(d.req[:0], d.family, d.seq, k); err != nil {
		return nil, err
	}
	var out []RealServer
	v4 := k.Address.Unmap().Is4()
	err = d.dump("real servers' dump", func(b []byte) (done bool, err error) {
		out, done, err = parseDestReply(b, d.seq, v4, out)
		return done, err
	})
	return out, err
}

// dump sends the request in d.req and hands each received buffer to parse until it reports
// the dump's end. what names the dump in errors.
func (d *destReader) dump(what string, parse func(b []byte) (done bool, err error)) error {
	if err := unix.Sendto(d.fd, d.req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send the %s request: %w", what, err)
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("receive the %s: %w", what, err)
		}
		done, err := parse(d.buf[:n])
		if err != nil || done {
			return err
		}
	}
}

// appendGetDest appends to b an IPVS_CMD_GET_DEST dump request for k.
func appendGetDest(b []byte, genlID uint16, seq uint32, k Key) ([]byte, error) {
	return appendDestMsg(b, genlID, seq, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, ipvsCmdGetDest, k, nil)
}

// appendDestMsg appends a destination command for k: its service nest and, when rs is not
// nil, the real server's nest (masquerading, no thresholds), as ipvsadm sends them.
func appendDestMsg(b []byte, genlID uint16, seq uint32, flags uint16, cmd uint8, k Key, rs *RealServer) ([]byte, error) {
	proto, ok := protocols[k.Protocol]
	addr := k.Address.Unmap()
	if !ok || !addr.IsValid() {
		return b, fmt.Errorf("real servers of %s: not a virtual server kubevs can describe", k)
	}
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0) // nlmsg_len, set below
	b = binary.NativeEndian.AppendUint16(b, genlID)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // the kernel's port id
	b = append(b, cmd, ipvsGenlVersion, 0, 0)
	svc := len(b)
	b = appendAttr(b, ipvsCmdAttrService, nil)
	b = appendAttr(b, ipvsSvcAttrAF, binary.NativeEndian.AppendUint16(nil, family(addr)))
	b = appendAttr(b, ipvsSvcAttrProtocol, binary.NativeEndian.AppendUint16(nil, proto))
	b = appendAttr(b, ipvsSvcAttrAddr, addr.AsSlice())
	b = appendAttr(b, ipvsSvcAttrPort, binary.BigEndian.AppendUint16(nil, k.Port))
	binary.NativeEndian.PutUint16(b[svc:], uint16(len(b)-svc))
	if rs != nil {
		u32 := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
		dest := len(b)
		b = appendAttr(b, ipvsCmdAttrDest, nil)
		b = appendAttr(b, ipvsDestAttrAddr, rs.Address.Unmap().AsSlice())
		b = appendAttr(b, ipvsDestAttrPort, binary.BigEndian.AppendUint16(nil, rs.Port))
		b = appendAttr(b, ipvsDestAttrFwdMethod, u32(ipvsConnFMasq))
		b = appendAttr(b, ipvsDestAttrWeight, u32(uint32(rs.Weight)))
		b = appendAttr(b, ipvsDestAttrUThresh, u32(0))
		b = appendAttr(b, ipvsDestAttrLThresh, u32(0))
		binary.NativeEndian.PutUint16(b[dest:], uint16(len(b)-dest))
	}
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b, nil
}

// appendAttr appends a netlink attribute, padded to 4 bytes. A nested attribute is opened
// with a nil value; its length is set by the caller once its members are appended.
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofNlAttr+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%unix.NLA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// parseDestReply decodes one received buffer of a real servers' dump with sequence number
// seq, appending to out; done is set by the dump's end. Messages of other sequence numbers
// (a late answer to an earlier request) are skipped.
func parseDestReply(b []byte, seq uint32, v4 bool, out []RealServer) (_ []RealServer, done bool, _ error) {
	done, _, err := nlreply.Walk(b, seq, "real servers' dump", func(_ uint16, msg []byte) error {
		rs, ok, err := parseDest(msg, v4)
		if ok {
			out = append(out, rs)
		}
		return err
	})
	return out, done, err
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// parseDest decodes one IPVS_CMD_NEW_DEST message (the genl header, then the nested
// destination). ok is false for a destination without an address or port.
func parseDest(msg []byte, v4 bool) (rs RealServer, ok bool, err error) {
	if len(msg) < genlHdrLen {
		return rs, false, errors.New("real server: " + errTruncatedDestReplyMsg)
	}
	var dest []byte
	if err := walkAttrs(msg[genlHdrLen:], func(typ uint16, v []byte) {
		if typ == ipvsCmdAttrDest {
			dest = v
		}
	}); err != nil {
		return rs, false, err
	}
	var addr []byte
	hasPort := false
	family := uint16(unix.AF_INET6)
	if v4 {
		family = unix.AF_INET
	}
	err = walkAttrs(dest, func(typ uint16, v []byte) {
		switch {
		case typ == ipvsDestAttrAddr:
			addr = v
		case typ == ipvsDestAttrPort && len(v) >= 2:
			rs.Port, hasPort = binary.BigEndian.Uint16(v), true
		case typ == ipvsDestAttrWeight && len(v) >= 4:
			rs.Weight = int32(binary.NativeEndian.Uint32(v))
		case typ == ipvsDestAttrActiveConns && len(v) >= 4:
			rs.ActiveConns = binary.NativeEndian.Uint32(v)
		case typ == ipvsDestAttrInactConns && len(v) >= 4:
			rs.InactiveConns = binary.NativeEndian.Uint32(v)
		case typ == ipvsDestAttrAddrFamily && len(v) >= 2:
			family = binary.NativeEndian.Uint16(v)
		}
	})
	if err != nil {
		return rs, false, err
	}
	switch {
	case family == unix.AF_INET && len(addr) >= 4:
		rs.Address = netip.AddrFrom4([4]byte(addr[:4]))
	case family == unix.AF_INET6 && len(addr) >= 16:
		rs.Address = netip.AddrFrom16([16]byte(addr[:16])).Unmap()
	default:
		return RealServer{}, false, nil
	}
	return rs, hasPort, nil
}

// walkAttrs calls fn with each attribute of b (type without the nested and byte order
// flags, value without padding).
func walkAttrs(b []byte, fn func(typ uint16, v []byte)) error {
	for len(b) >= unix.SizeofNlAttr {
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofNlAttr || n > len(b) {
			return fmt.Errorf("real servers' dump: attribute length %d of %d bytes", n, len(b))
		}
		fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[unix.SizeofNlAttr:n])
		b = b[min((n+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1), len(b)):]
	}
	return nil
}
