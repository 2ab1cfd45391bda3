package ipset

// The ipset netlink protocol (NFNL_SUBSYS_IPSET), the part kubevs speaks. vishvananda/netlink
// has helpers for it but sends one message per member and logs attributes it does not know;
// kubevs needs thousands of members per message (nested IPSET_ATTR_ADT, as `ipset restore`
// does), so the few messages are encoded here. Numbers are from the kernel's uapi header
// include/uapi/linux/netfilter/ipset/ip_set.h.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

const (
	subsysIPSet   = 6 // NFNL_SUBSYS_IPSET
	protocolIPSet = 6 // IPSET_PROTOCOL_MIN: every kernel since 3.x speaks it

	cmdCreate  = 2
	cmdDestroy = 3
	cmdList    = 7
	cmdAdd     = 9
	cmdDel     = 10
	cmdType    = 13

	// Command-level attributes.
	attrProtocol = 1
	attrSetName  = 2
	attrTypeName = 3
	attrRevision = 4
	attrFamily   = 5
	attrFlags    = 6
	attrData     = 7
	attrADT      = 8
	attrLineNo   = 9

	// Attributes inside IPSET_ATTR_DATA.
	attrIP        = 1
	attrCIDR      = 3
	attrPort      = 4 // also PORT_FROM
	attrPortTo    = 5
	attrProto     = 7
	attrCadtFlags = 8
	attrMaxElem   = 19
	attrElements  = 24 // IPSET_ATTR_ELEMENTS: the member count in a set's header
	attrIP2       = 20
	attrCIDR2     = 21
	attrComment   = 26

	// Inside a nested IP attribute.
	attrIPv4 = 1
	attrIPv6 = 2

	flagWithComment = 1 << 4 // IPSET_FLAG_WITH_COMMENT (cadt flags)
	flagListSetName = 1 << 1 // IPSET_FLAG_LIST_SETNAME (dump flags)
	flagListHeader  = 1 << 2 // IPSET_FLAG_LIST_HEADER

	nlaNested    = 1 << 15
	nlaNetOrder  = 1 << 14
	nlaTypeMask  = ^uint16(nlaNested | nlaNetOrder)
	nfprotoIPv4  = unix.AF_INET
	nfprotoIPv6  = unix.AF_INET6
	maxADTLength = 60000 // an attribute's length is 16 bits; stay well under it
)

// ipset's private error numbers, returned negated in the netlink ack.
const (
	errBusy       = 4100 // IPSET_ERR_BUSY: the set is referenced (by an iptables rule)
	errReferenced = 4108
)

var ipsetErrors = map[syscall.Errno]string{
	4097: "protocol error", 4098: "no such set type (or revision) in the kernel",
	4099: "maximum number of sets reached", 4101: "second set exists",
	4102: "set type mismatch", 4103: "element exists", 4104: "invalid CIDR",
	4105: "invalid netmask", 4106: "invalid family", 4107: "timeout not supported",
	4108: "set is referenced", 4109: "invalid IPv4 address", 4110: "invalid IPv6 address",
	4111: "counters not supported", 4112: "comments not supported by the set",
	4352: "set is full (or port outside a bitmap's range)", 4353: "element too long",
	4354: "invalid protocol", 4355: "missing protocol",
}

// kernelError maps a netlink error to the package's sentinels, naming ipset's own codes.
func kernelError(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch errno {
	case unix.EEXIST:
		return fmt.Errorf("%w: %w", ErrExist, err)
	case unix.ENOENT:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errBusy, errReferenced:
		return fmt.Errorf("%w: set is referenced by a rule", ErrInUse)
	}
	if msg, ok := ipsetErrors[errno]; ok {
		return fmt.Errorf("ipset: %s (errno %d)", msg, int(errno))
	}
	return err
}

// attrs builds netlink attributes (native-endian headers, 4-byte aligned).
type attrs []byte

func (a *attrs) put(typ uint16, v []byte) {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[:], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	*a = append(*a, h[:]...)
	*a = append(*a, v...)
	for len(*a)%4 != 0 {
		*a = append(*a, 0)
	}
}

func (a *attrs) putString(typ uint16, s string) { a.put(typ, append([]byte(s), 0)) }
func (a *attrs) putU8(typ uint16, v uint8)      { a.put(typ, []byte{v}) }

func (a *attrs) putBE16(typ uint16, v uint16) {
	a.put(typ|nlaNetOrder, binary.BigEndian.AppendUint16(nil, v))
}

func (a *attrs) putBE32(typ uint16, v uint32) {
	a.put(typ|nlaNetOrder, binary.BigEndian.AppendUint32(nil, v))
}

// nest opens a nested attribute; end closes it.
func (a *attrs) nest(typ uint16) int {
	start := len(*a)
	a.put(typ|nlaNested, nil)
	return start
}

func (a *attrs) end(start int) {
	binary.NativeEndian.PutUint16((*a)[start:], uint16(len(*a)-start))
}

func (a *attrs) putAddr(typ uint16, ip netip.Addr) {
	n := a.nest(typ)
	if ip.Is4() {
		a.put(attrIPv4|nlaNetOrder, ip.AsSlice())
	} else {
		a.put(attrIPv6|nlaNetOrder, ip.AsSlice())
	}
	a.end(n)
}

// putMember encodes one member as an IPSET_ATTR_DATA.
func (a *attrs) putMember(m member, comment string) {
	n := a.nest(attrData)
	if m.ip.IsValid() {
		a.putAddr(attrIP, m.ip)
		if m.cidr >= 0 {
			a.putU8(attrCIDR, uint8(m.cidr))
		}
	}
	if m.hasPort {
		a.putBE16(attrPort, m.port)
		if m.ip.IsValid() {
			a.putU8(attrProto, m.proto)
		}
	}
	if m.ip2.IsValid() {
		a.putAddr(attrIP2, m.ip2)
		if m.cidr2 >= 0 {
			a.putU8(attrCIDR2, uint8(m.cidr2))
		}
	}
	if comment != "" {
		a.putString(attrComment, comment)
	}
	a.end(n)
}

// parseAttrs calls fn for each attribute in b with its type stripped of flags.
func parseAttrs(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < 4 || l > len(b) {
			return fmt.Errorf("malformed netlink attribute %d (length %d of %d)", typ, l, len(b))
		}
		if err := fn(typ, b[4:l]); err != nil {
			return err
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return nil
}

func cString(v []byte) string {
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

func parseAddr(v []byte) (netip.Addr, error) {
	var ip netip.Addr
	err := parseAttrs(v, func(typ uint16, v []byte) error {
		if a, ok := netip.AddrFromSlice(v); ok && (typ == attrIPv4 || typ == attrIPv6) {
			ip = a
		}
		return nil
	})
	if err == nil && !ip.IsValid() {
		err = errors.New("address attribute without an address")
	}
	return ip, err
}

// parseMember decodes one IPSET_ATTR_DATA of a list reply; comment is the member's comment.
func parseMember(b []byte) (m member, comment string, err error) {
	m = member{cidr: -1, cidr2: -1}
	err = parseAttrs(b, func(typ uint16, v []byte) error {
		var err error
		switch {
		case typ == attrIP:
			m.ip, err = parseAddr(v)
		case typ == attrIP2:
			m.ip2, err = parseAddr(v)
		case typ == attrCIDR && len(v) >= 1:
			m.cidr = int(v[0])
		case typ == attrCIDR2 && len(v) >= 1:
			m.cidr2 = int(v[0])
		case typ == attrPort && len(v) >= 2:
			m.port, m.hasPort = binary.BigEndian.Uint16(v), true
		case typ == attrProto && len(v) >= 1:
			m.proto = v[0]
		case typ == attrComment:
			comment = cString(v)
		}
		return err
	})
	return m, comment, err
}

// request builds an ipset message: nfgenmsg, the protocol attribute, then body.
func request(cmd, flags int, body attrs) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(cmd|subsysIPSet<<8, flags)
	payload := attrs{unix.AF_INET, 0, 0, 0} // nfgenmsg: family, version 0, res_id 0
	payload.putU8(attrProtocol, protocolIPSet)
	req.AddRawData(append(payload, body...))
	return req
}

// execute sends req in the calling thread's network namespace and returns the replies'
// payloads after the nfgenmsg header.
func execute(req *nl.NetlinkRequest) ([][]byte, error) {
	msgs, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	if err != nil {
		return nil, kernelError(err)
	}
	out := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		if len(m) >= 4 {
			out = append(out, m[4:])
		}
	}
	return out, nil
}

const (
	flagsDo   = unix.NLM_F_REQUEST | unix.NLM_F_ACK
	flagsDump = unix.NLM_F_REQUEST | unix.NLM_F_ACK | unix.NLM_F_DUMP
)
