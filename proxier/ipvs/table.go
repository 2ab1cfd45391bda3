package ipvs

// A periodic resync must see every real server, and generic netlink answers only one
// virtual server's real servers per dump: at 10,000 virtual servers that is 10,000 dumps of
// three system calls each. The kernel also prints its whole table, real servers included, in
// /proc/net/ip_vs, one seq_file that a reader takes in a few large reads. TableReader reads
// it; ParseTable decodes the text. The text lacks what the netlink listing of virtual
// servers gives (scheduler flags, timeouts, persistence netmask), so a caller still lists
// virtual servers over netlink and takes only real servers from the table.
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
	"net/netip"
	"strconv"
)

// TableReader reads the real servers of every virtual server at once. The Linux
// implementation and the fake implement it beside Interface.
type TableReader interface {
	// RealServerTable returns the real servers of the virtual servers it could read whole,
	// by key (a virtual server without real servers maps to an empty slice). A virtual
	// server absent from the result must be read with RealServers.
	RealServerTable() (map[Key][]RealServer, error)
}

// tableProtocols are the protocols /proc/net/ip_vs names that kubevs programs; FWM
// (firewall-mark services) and anything else are left out.
var tableProtocols = map[string]Protocol{"TCP": TCP, "UDP": UDP, "SCTP": SCTP}

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
	out := map[Key][]RealServer{}
	twice := map[Key]bool{}
	var cur Key
	in := false // the current virtual server is kept
	for ln := 1; len(text) > 0; ln++ {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if ln <= 3 { // the header: version, then the two column lines
			continue
		}
		if len(line) == 0 {
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
			out[cur] = append(out[cur], rs)
			continue
		}
		k, ok, err := parseTableService(line)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/ip_vs line %d %q: %w", ln, line, err)
		}
		in = ok && !twice[k]
		if !in {
			continue
		}
		if _, seen := out[k]; seen {
			delete(out, k)
			twice[k], in = true, false
			continue
		}
		cur = k
		out[k] = []RealServer{}
	}
	return out, nil
}

// parseTableService reads a virtual server line; ok is false for one kubevs does not
// program (a firewall mark, another protocol).
func parseTableService(line []byte) (k Key, ok bool, err error) {
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	p, known := tableProtocols[string(proto)]
	if !known {
		return k, false, nil
	}
	addr, _, _ := bytes.Cut(bytes.TrimLeft(rest, " "), []byte(" "))
	ap, err := parseTableAddrPort(addr)
	if err != nil {
		return k, false, err
	}
	return Key{Address: ap.Addr(), Protocol: p, Port: ap.Port()}, true, nil
}

// parseTableDest reads a real server line: "  -> ADDR:PORT Forward Weight Active Inactive".
func parseTableDest(line []byte) (RealServer, error) {
	f := bytes.Fields(line)
	if len(f) != 6 || string(f[0]) != "->" {
		return RealServer{}, errors.New("want -> address:port forward weight active inactive")
	}
	ap, err := parseTableAddrPort(f[1])
	if err != nil {
		return RealServer{}, err
	}
	var n [3]int
	for i, s := range f[3:] {
		if n[i], err = strconv.Atoi(string(s)); err != nil {
			return RealServer{}, fmt.Errorf("column %d: %w", i+4, err)
		}
	}
	return RealServer{Address: ap.Addr(), Port: ap.Port(), Weight: n[0], ActiveConns: n[1], InactiveConns: n[2]}, nil
}

// parseTableAddrPort reads "0A000001:0050" (IPv4 as 8 hex digits) or "[fd00:...]:0050".
func parseTableAddrPort(b []byte) (netip.AddrPort, error) {
	i := bytes.LastIndexByte(b, ':')
	if i < 0 || len(b)-i-1 != 4 {
		return netip.AddrPort{}, fmt.Errorf("address %q: want address:port with 4 hex digits of port", b)
	}
	port, err := strconv.ParseUint(string(b[i+1:]), 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: port: %w", b, err)
	}
	a := b[:i]
	if len(a) > 2 && a[0] == '[' && a[len(a)-1] == ']' {
		addr, err := netip.ParseAddr(string(a[1 : len(a)-1]))
		if err != nil || !addr.Is6() {
			return netip.AddrPort{}, fmt.Errorf("address %q: not an IPv6 address", b)
		}
		return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
	}
	if len(a) != 8 {
		return netip.AddrPort{}, fmt.Errorf("address %q: want 8 hex digits of IPv4 address", b)
	}
	v, err := strconv.ParseUint(string(a), 16, 32)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", b, err)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), uint16(port)), nil
}
