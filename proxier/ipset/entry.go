package ipset

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// member is one parsed Entry: the fields a set type uses, as the kernel stores them.
type member struct {
	ip      netip.Addr
	cidr    int // hash:net prefix length of ip; -1 when the type has none
	proto   uint8
	port    uint16
	hasPort bool
	ip2     netip.Addr
	cidr2   int // hash:ip,port,net prefix length of ip2; -1 when the type has none
}

// IP protocol numbers ipset prints by name.
const (
	protoICMP    = 1
	protoTCP     = 6
	protoUDP     = 17
	protoICMPv6  = 58
	protoSCTP    = 132
	protoUDPLite = 136
)

var protoNames = map[uint8]string{
	protoICMP: "icmp", protoTCP: "tcp", protoUDP: "udp", protoICMPv6: "icmpv6",
	protoSCTP: "sctp", protoUDPLite: "udplite",
}

// Canonical checks that e fits set s (its type, family and, for bitmap:port, its range) as the
// kernel would, and returns e in the form `ipset list` prints: lowercase protocol, "tcp:" added
// to a bare port, host prefixes without "/32" or "/128", networks masked. An empty Family
// means IPv4, as for ipset itself.
func Canonical(s Set, e Entry) (Entry, error) {
	m, err := parseEntry(s, e)
	if err != nil {
		return "", err
	}
	return m.entry(), nil
}

// parseEntry parses e for set s.
func parseEntry(s Set, e Entry) (member, error) {
	m := member{cidr: -1, cidr2: -1}
	parts := strings.Split(string(e), ",")
	want := map[Type]int{HashIP: 1, HashNet: 1, BitmapPort: 1, HashIPPort: 2, HashIPPortIP: 3, HashIPPortNet: 3}
	n, ok := want[s.Type]
	if !ok {
		return m, fmt.Errorf("entry %q: unsupported set type %q", e, s.Type)
	}
	if len(parts) != n {
		return m, fmt.Errorf("entry %q does not fit %s: want %d comma-separated parts", e, s.Type, n)
	}
	if s.Type == BitmapPort {
		p, err := strconv.ParseUint(parts[0], 10, 16)
		if err != nil {
			return m, fmt.Errorf("entry %q: bad port: %w", e, err)
		}
		if s.PortTo != 0 && (uint16(p) < s.PortFrom || uint16(p) > s.PortTo) {
			return m, fmt.Errorf("entry %q outside the range %d-%d of the set", e, s.PortFrom, s.PortTo)
		}
		m.port, m.hasPort = uint16(p), true
		return m, nil
	}
	var err error
	switch s.Type {
	case HashNet:
		m.ip, m.cidr, err = parseNet(s.Family, parts[0])
	default:
		m.ip, err = parseHost(s.Family, parts[0])
	}
	if err != nil {
		return m, fmt.Errorf("entry %q: %w", e, err)
	}
	if n >= 2 {
		if m.proto, m.port, err = parsePort(parts[1]); err != nil {
			return m, fmt.Errorf("entry %q: %w", e, err)
		}
		m.hasPort = true
	}
	switch s.Type {
	case HashIPPortIP:
		m.ip2, err = parseHost(s.Family, parts[2])
	case HashIPPortNet:
		m.ip2, m.cidr2, err = parseNet(s.Family, parts[2])
	}
	if err != nil {
		return m, fmt.Errorf("entry %q: %w", e, err)
	}
	return m, nil
}

// familyOK reports whether a belongs to family f ("" = IPv4).
func familyOK(f Family, a netip.Addr) error {
	switch {
	case f == IPv6 && !a.Is6():
		return fmt.Errorf("%s is not an IPv6 address (set family inet6)", a)
	case f != IPv6 && !a.Is4():
		return fmt.Errorf("%s is not an IPv4 address (set family inet)", a)
	case a.Zone() != "":
		return fmt.Errorf("%s: zones are not allowed", a)
	}
	return nil
}

// parseHost parses one address; a full-length prefix is accepted as the address.
func parseHost(f Family, s string) (netip.Addr, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Addr{}, err
		}
		if p.Bits() != p.Addr().BitLen() {
			return netip.Addr{}, fmt.Errorf("%s: a range is not a single member (want one address)", s)
		}
		return p.Addr(), familyOK(f, p.Addr())
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, err
	}
	return a, familyOK(f, a)
}

// parseNet parses a network (a bare address is a host prefix) and masks it as the kernel does.
func parseNet(f Family, s string) (netip.Addr, int, error) {
	if !strings.Contains(s, "/") {
		a, err := parseHost(f, s)
		return a, a.BitLen(), err
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	if err := familyOK(f, p.Addr()); err != nil {
		return netip.Addr{}, 0, err
	}
	if p.Bits() == 0 {
		return netip.Addr{}, 0, fmt.Errorf("%s: prefix length 0 is not allowed in a hash set", s)
	}
	return p.Masked().Addr(), p.Bits(), nil
}

// parsePort parses "tcp:80", "udp:53", "sctp:9", "80" (tcp, as ipset reads it) or "6:80".
func parsePort(s string) (uint8, uint16, error) {
	proto, port := "tcp", s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		proto, port = strings.ToLower(s[:i]), s[i+1:]
	}
	var pn uint8
	for n, name := range protoNames {
		if name == proto {
			pn = n
		}
	}
	if pn == 0 {
		n, err := strconv.ParseUint(proto, 10, 8)
		if err != nil || n == 0 {
			return 0, 0, fmt.Errorf("unknown protocol %q", proto)
		}
		pn = uint8(n)
	}
	if pn == protoICMP || pn == protoICMPv6 {
		return 0, 0, fmt.Errorf("protocol %s is not supported by kubevs", proto)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("bad port %q: %w", port, err)
	}
	if pn != protoTCP && pn != protoUDP && pn != protoSCTP && pn != protoUDPLite && p != 0 {
		// The kernel keeps no port for protocols without one.
		return 0, 0, fmt.Errorf("protocol %s has no ports (use port 0)", proto)
	}
	return pn, uint16(p), nil
}

// entry prints m as `ipset list` does.
func (m member) entry() Entry {
	var b strings.Builder
	if m.ip.IsValid() {
		b.WriteString(m.ip.String())
		if m.cidr >= 0 && m.cidr < m.ip.BitLen() {
			b.WriteString("/" + strconv.Itoa(m.cidr))
		}
	}
	if m.hasPort {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if m.ip.IsValid() {
			if name, ok := protoNames[m.proto]; ok {
				b.WriteString(name)
			} else {
				b.WriteString(strconv.Itoa(int(m.proto)))
			}
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(int(m.port)))
	}
	if m.ip2.IsValid() {
		b.WriteString("," + m.ip2.String())
		if m.cidr2 >= 0 && m.cidr2 < m.ip2.BitLen() {
			b.WriteString("/" + strconv.Itoa(m.cidr2))
		}
	}
	return Entry(b.String())
}

// MaxNameLen is the longest set name the kernel accepts (IPSET_MAXNAMELEN less the NUL).
const MaxNameLen = 31

// Validate checks a set definition as the kernel would at create time.
func (s Set) Validate() error {
	if s.Name == "" || len(s.Name) > MaxNameLen {
		return fmt.Errorf("set name %q: want 1 to %d characters", s.Name, MaxNameLen)
	}
	switch s.Type {
	case HashIP, HashIPPort, HashIPPortIP, HashIPPortNet, HashNet:
		if s.Family != "" && s.Family != IPv4 && s.Family != IPv6 {
			return fmt.Errorf("set %s: unknown family %q", s.Name, s.Family)
		}
	case BitmapPort:
		if s.PortFrom > s.PortTo || s.PortTo == 0 {
			return fmt.Errorf("set %s: bad port range %d-%d", s.Name, s.PortFrom, s.PortTo)
		}
	default:
		return fmt.Errorf("set %s: unsupported type %q", s.Name, s.Type)
	}
	if len(s.Comment) > 255 {
		return fmt.Errorf("set %s: comment longer than 255 bytes", s.Name)
	}
	return nil
}
