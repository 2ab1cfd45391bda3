package ipvs

// A periodic resync must see every real server, and generic netlink answers only one
// virtual server's real servers per dump: at 10,000 virtual servers that is 10,000 dumps of
// three system calls each. The kernel also prints its whole table, real servers included, in
// /proc/net/ip_vs, one seq_file that a reader takes in a few large reads. TableReader reads
// it; ParseTable decodes the text. The text lacks what the netlink listing of virtual
// servers gives (scheduler flags, timeouts, persistence netmask), so a caller still lists
// virtual servers over netlink and takes only real servers from the table.
//
// Each read of the file restarts the kernel's walk of its table at the page's first virtual
// server, so the table pays only below TableMaxVirtualServers.
//
// A seq_file read in several calls restarts its walk of the kernel's hash table at an
// index: a virtual server added or deleted between two calls may shift the rest, so one may
// be printed twice or not at all. Each virtual server is printed whole within one call
// (with its real servers, under RCU). ParseTable therefore leaves out any key printed twice,
// and callers dump over netlink the virtual servers the table does not hold.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
)

// TableMaxVirtualServers is the size up to which reading the table beats one dump per
// virtual server. The kernel hands the file out a page at a time (about six virtual
// servers of ten real servers) and starts each page by walking its hash table from the
// first virtual server to the page's: the whole read is quadratic. In the emulated test VM
// (make bench-e2e, 7 Dec) the table of 1,000 x 10 took 66-73 ms against 175-201 ms of
// dumps, that of 10,000 x 10 about 1.2 s against 0.9 s; the two meet near 6,500.
const TableMaxVirtualServers = 5000

// TableReader reads the real servers of every virtual server at once. The Linux
// implementation and the fake implement it beside Interface.
type TableReader interface {
	// RealServerTable returns the real servers of the virtual servers it could read whole,
	// by key (a virtual server without real servers maps to an empty slice). A virtual
	// server absent from the result must be read with RealServers.
	RealServerTable() (map[Key][]RealServer, error)
}

// ParseTable decodes the text of /proc/net/ip_vs:
//
//	IP Virtual Server version 1.2.1 (size=4096)
//	Prot LocalAddress:Port Scheduler Flags
//	  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
//	TCP  0A600001:0050 rr
//	  -> 0AF40002:1F90      Masq    1      0          0
//	UDP  [fd00:0000:0000:0000:0000:0000:0000:000a]:0035 rr persistent 10800 128
//	  -> [fd01:...:0002]:0035    Masq    1      0          0
//
// IPv4 addresses and every port are hexadecimal. Virtual servers of other protocols
// (firewall marks) are skipped with their real servers, and a key printed twice is left out
// (see above). A line it cannot read is an error naming it.
func ParseTable(text []byte) (map[Key][]RealServer, error) {
	// Every real server goes into one slice; each key gets its part of it, capped so that
	// an append by the caller copies rather than overwrites the next key's.
	all := make([]RealServer, 0, bytes.Count(text, []byte("->")))
	out := map[Key][]RealServer{}
	var twice map[Key]bool
	var cur Key
	in, from := false, 0 // the current virtual server is kept; its first real server in all
	end := func() {
		if in {
			out[cur] = all[from:len(all):len(all)]
		}
	}
	for ln := 1; len(text) > 0; ln++ {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if ln <= 3 || len(line) == 0 { // the header: version, then the two column lines
			continue
		}
		if line[0] == ' ' {
			if !in {
				continue
			}
			rs, err := parseTableDest(line)
			if err != nil {
				return nil, fmt.Errorf("/proc/net/ip_vs line %d %q: %w", ln, line, err)
			}
			all = append(all, rs)
			continue
		}
		end()
		k, ok, err := parseTableService(line)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/ip_vs line %d %q: %w", ln, line, err)
		}
		if in = ok && !twice[k]; !in {
			continue
		}
		if _, seen := out[k]; seen {
			delete(out, k)
			if twice == nil {
				twice = map[Key]bool{}
			}
			twice[k], in = true, false
			continue
		}
		cur, from = k, len(all)
	}
	end()
	return out, nil
}

// parseTableService reads a virtual server line; ok is false for one kubevs does not
// program (a firewall mark, another protocol).
func parseTableService(line []byte) (k Key, ok bool, err error) {
	proto, rest := field(line)
	var p Protocol
	switch string(proto) {
	case "TCP":
		p = TCP
	case "UDP":
		p = UDP
	case "SCTP":
		p = SCTP
	default:
		return k, false, nil
	}
	addr, _ := field(rest)
	ap, err := parseTableAddrPort(addr)
	if err != nil {
		return k, false, err
	}
	return Key{Address: ap.Addr(), Protocol: p, Port: ap.Port()}, true, nil
}

// field returns the first space-separated field of b and what follows it.
func field(b []byte) (f, rest []byte) {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' {
		j++
	}
	return b[i:j], b[j:]
}

// parseTableDest reads a real server line: "  -> ADDR:PORT Forward Weight Active Inactive".
func parseTableDest(line []byte) (RealServer, error) {
	var f [6][]byte
	rest := line
	for i := range f {
		if f[i], rest = field(rest); len(f[i]) == 0 {
			return RealServer{}, errors.New("want -> address:port forward weight active inactive")
		}
	}
	if extra, _ := field(rest); len(extra) != 0 || string(f[0]) != "->" {
		return RealServer{}, errors.New("want -> address:port forward weight active inactive")
	}
	ap, err := parseTableAddrPort(f[1])
	if err != nil {
		return RealServer{}, err
	}
	var n [3]int
	for i, s := range f[3:] {
		if n[i], err = atoi(s); err != nil {
			return RealServer{}, fmt.Errorf("column %d: %w", i+4, err)
		}
	}
	if n[0] < math.MinInt32 || n[0] > math.MaxInt32 { // the kernel's int
		return RealServer{}, fmt.Errorf("column 4: weight %d out of range", n[0])
	}
	// The connection counts only decide when a drained real server may go: a count the
	// kernel printed below zero counts as none.
	count := func(c int) uint32 { return uint32(min(max(c, 0), math.MaxUint32)) }
	return RealServer{Address: ap.Addr(), Port: ap.Port(), Weight: int32(n[0]), ActiveConns: count(n[1]), InactiveConns: count(n[2])}, nil
}

// atoi reads a decimal int, with an optional minus, without allocating.
func atoi(b []byte) (int, error) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return 0, fmt.Errorf("%q is not a number", b)
	}
	n := 0
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number", b)
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// parseHex reads exactly len(b) hex digits (at most 8).
func parseHex(b []byte) (uint32, bool) {
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var v uint32
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

// parseTableAddrPort reads "0A000001:0050" (IPv4 as 8 hex digits) or "[fd00:...]:0050".
func parseTableAddrPort(b []byte) (netip.AddrPort, error) {
	i := bytes.LastIndexByte(b, ':')
	if i < 0 || len(b)-i-1 != 4 {
		return netip.AddrPort{}, fmt.Errorf("address %q: want address:port with 4 hex digits of port", b)
	}
	port, ok := parseHex(b[i+1:])
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q: port is not hexadecimal", b)
	}
	a := b[:i]
	if len(a) > 2 && a[0] == '[' && a[len(a)-1] == ']' {
		addr, err := netip.ParseAddr(string(a[1 : len(a)-1]))
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("address %q: not an IPv6 address", b)
		}
		return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
	}
	v, ok := parseHex(a)
	if !ok || len(a) != 8 {
		return netip.AddrPort{}, fmt.Errorf("address %q: want 8 hex digits of IPv4 address", b)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), uint16(port)), nil
}
