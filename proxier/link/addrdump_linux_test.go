package link

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestAddressesOfOneLink: in a fresh namespace, the listing holds the link's host addresses
// of both families, sorted, and nothing else: not a /24 on it, not another link's address.
// A bridge stands for the dummy, which the host kernel lacks.
func TestAddressesOfOneLink(t *testing.T) {
	testenv.EnterNetns(t)
	for _, name := range []string{"kube-ipvs0", "other0"} {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	l := newLinks(t)
	want := []netip.Addr{netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00::1")}
	for _, a := range []netip.Addr{want[2], want[1], want[0]} {
		if err := l.AddAddress("kube-ipvs0", a); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AddAddress("other0", netip.MustParseAddr("10.96.0.2")); err != nil {
		t.Fatal(err)
	}
	ipvs0, err := netlink.LinkByName("kube-ipvs0")
	if err != nil {
		t.Fatal(err)
	}
	for _, cidr := range []string{"10.1.0.1/24", "fd00:1::1/64"} {
		ip, ipn, _ := net.ParseCIDR(cidr)
		ipn.IP = ip
		if err := netlink.AddrAdd(ipvs0, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatalf("add %s: %v", cidr, err)
		}
	}
	got, err := l.Addresses("kube-ipvs0")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, addrs); d != "" {
		t.Errorf("addresses of kube-ipvs0 (-want +got):\n%s", d)
	}
	if _, err := l.Addresses("absent0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("addresses of an absent link: %v, want ErrNotFound", err)
	}
}

// addBridge creates a bridge named name (standing for the dummy the host kernel lacks) in
// the current namespace and returns it.
func addBridge(t *testing.T, name string) netlink.Link {
	t.Helper()
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		t.Fatal(err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// hostOf keeps the host addresses of link index, as Addresses does.
func hostOf(index int) func(netip.Addr, int, int) bool {
	return func(ip netip.Addr, prefix, i int) bool { return i == index && prefix == ip.BitLen() }
}

// addrMsg builds one RTM_NEWADDR message.
func addrMsg(seq uint32, flags uint16, family, prefix byte, index uint32, attrs ...[]byte) []byte {
	body := []byte{family, prefix, 0, 0}
	body = binary.NativeEndian.AppendUint32(body, index)
	for _, a := range attrs {
		body = append(body, a...)
	}
	b := binary.NativeEndian.AppendUint32(nil, uint32(unix.SizeofNlMsghdr+len(body)))
	b = binary.NativeEndian.AppendUint16(b, unix.RTM_NEWADDR)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	return append(b, body...)
}

func rtAttr(typ uint16, v []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(unix.SizeofRtAttr+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func doneMsg(seq uint32, flags uint16, errno int32) []byte {
	b := binary.NativeEndian.AppendUint32(nil, unix.SizeofNlMsghdr+4)
	b = binary.NativeEndian.AppendUint16(b, unix.NLMSG_DONE)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	return binary.NativeEndian.AppendUint32(b, uint32(errno))
}

// TestParseAddrReply: IFA_LOCAL wins over IFA_ADDRESS (point-to-point), other links,
// sequence numbers and IPv4-mapped addresses are skipped, NLM_F_DUMP_INTR is reported, the end's error is returned.
func TestParseAddrReply(t *testing.T) {
	var b []byte
	b = append(b, addrMsg(5, unix.NLM_F_MULTI, unix.AF_INET, 32, 3, rtAttr(unix.IFA_ADDRESS, []byte{10, 0, 0, 9}), rtAttr(unix.IFA_LOCAL, []byte{10, 96, 0, 1}))...)
	b = append(b, addrMsg(5, unix.NLM_F_MULTI, unix.AF_INET, 32, 4, rtAttr(unix.IFA_ADDRESS, []byte{10, 96, 0, 2}))...)
	b = append(b, addrMsg(4, unix.NLM_F_MULTI, unix.AF_INET, 32, 3, rtAttr(unix.IFA_ADDRESS, []byte{10, 96, 0, 3}))...)
	// An IPv4-mapped IPv6 /128 is no IPv4 host address.
	b = append(b, addrMsg(5, unix.NLM_F_MULTI, unix.AF_INET6, 128, 3, rtAttr(unix.IFA_ADDRESS, netip.MustParseAddr("::ffff:10.96.0.4").AsSlice()))...)
	b = append(b, addrMsg(5, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, unix.AF_INET6, 128, 3, rtAttr(unix.IFA_ADDRESS, netip.MustParseAddr("fd00::1").AsSlice()))...)
	got, done, intr, err := parseAddrReply(b, 5, hostOf(3), nil)
	if err != nil || done || !intr {
		t.Fatalf("done %v intr %v err %v; want false true nil", done, intr, err)
	}
	if d := cmp.Diff([]netip.Addr{netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("fd00::1")}, got, addrs); d != "" {
		t.Errorf("addresses (-want +got):\n%s", d)
	}
	if _, done, _, err := parseAddrReply(doneMsg(5, 0, 0), 5, hostOf(3), nil); !done || err != nil {
		t.Errorf("end: done %v err %v", done, err)
	}
	if _, _, _, err := parseAddrReply(doneMsg(5, 0, -int32(unix.EBUSY)), 5, hostOf(3), nil); !errors.Is(err, unix.EBUSY) {
		t.Errorf("end with an error: %v, want EBUSY", err)
	}
	if _, _, _, err := parseAddrReply(b[:10], 5, hostOf(3), nil); err == nil {
		t.Error("a truncated reply parsed")
	}
}

// FuzzParseAddrReply: any reply parses or fails, never panics; what it keeps is a host address.
func FuzzParseAddrReply(f *testing.F) {
	f.Add(addrMsg(1, 0, unix.AF_INET, 32, 2, rtAttr(unix.IFA_ADDRESS, []byte{10, 96, 0, 1})))
	f.Add(append(addrMsg(1, 0, unix.AF_INET6, 128, 2, rtAttr(unix.IFA_LOCAL, make([]byte, 16))), doneMsg(1, 0, 0)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, _, _, err := parseAddrReply(b, 1, hostOf(2), nil)
		if err != nil {
			return
		}
		for _, a := range got {
			if !a.IsValid() || a.Is4In6() {
				t.Fatalf("kept %v", a)
			}
		}
	})
}

// TestAddressWritesFollowALinkCreatedAgain: the adapter caches the link it writes addresses
// to; when someone deletes it and creates it again (another index), the next add finds the
// cached one gone (ENODEV), looks the link up again and lands on the new one; a delete
// from a link that is gone is ErrNotFound. A bridge stands for the dummy.
func TestAddressWritesFollowALinkCreatedAgain(t *testing.T) {
	testenv.EnterNetns(t)
	old := addBridge(t, "kube-ipvs0")
	l := newLinks(t)
	a, b := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.96.0.2")
	if err := l.AddAddress("kube-ipvs0", a); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(old); err != nil {
		t.Fatal(err)
	}
	created := addBridge(t, "kube-ipvs0")
	if created.Attrs().Index == old.Attrs().Index {
		t.Fatalf("the link came back with its old index %d: the test proves nothing", old.Attrs().Index)
	}
	if err := l.AddAddress("kube-ipvs0", b); err != nil {
		t.Fatalf("add to the link created again: %v", err)
	}
	got, err := l.Addresses("kube-ipvs0")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]netip.Addr{b}, got, addrs); d != "" {
		t.Errorf("addresses of the new kube-ipvs0 (-want +got):\n%s", d)
	}
	if err := netlink.LinkDel(created); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteAddress("kube-ipvs0", b); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete from a link that is gone: %v, want ErrNotFound", err)
	}
}

// TestHostAddressesMatchesTheStandardLibrary: in a fresh namespace with VIPs on kube-ipvs0,
// addresses of several prefixes on other links and lo up, HostAddresses lists what Go's
// per-link listing (net.Interface.Addrs) lists for every link but kube-ipvs0, both with the
// kernel filtering each link's dump and on a socket where it does not (as on a kernel older
// than 4.20): there the answer holds other links' addresses, and HostAddresses falls back to
// one dump of every address. Bridges stand for the links.
func TestHostAddressesMatchesTheStandardLibrary(t *testing.T) {
	testenv.EnterNetns(t)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	l := newLinks(t)
	for name, cidrs := range map[string][]string{
		"kube-ipvs0": {"10.96.0.1/32", "10.96.0.2/32", "fd00::a/128"},
		"eth9":       {"192.168.1.10/24", "2001:db8::1/64", "203.0.113.7/32"},
		"eth8":       {"10.0.0.5/8"},
	} {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			t.Fatal(err)
		}
		nl, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cidrs {
			ip, ipn, _ := net.ParseCIDR(c)
			ipn.IP = ip
			if err := netlink.AddrAdd(nl, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
				t.Fatalf("add %s to %s: %v", c, name, err)
			}
		}
	}
	_ = l
	got, err := HostAddresses("kube-ipvs0")
	if err != nil {
		t.Fatal(err)
	}
	unfiltered, err := newAddrReader()
	if err != nil {
		t.Fatal(err)
	}
	defer unfiltered.close()
	if err := unix.SetsockoptInt(unfiltered.fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 0); err != nil {
		t.Fatal(err)
	}
	eth9, err := net.InterfaceByName("eth9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unfiltered.linkAddresses(eth9.Index); !errors.Is(err, errUnfiltered) {
		t.Errorf("one link's dump without strict checking: %v, want errUnfiltered", err)
	}
	fallback, err := unfiltered.hostAddresses("kube-ipvs0")
	if err != nil {
		t.Fatal(err)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var want []netip.Addr
	for _, i := range ifs {
		if i.Name == "kube-ipvs0" {
			continue
		}
		as, err := i.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				ip, _ := netip.AddrFromSlice(n.IP)
				want = append(want, ip.Unmap())
			}
		}
	}
	sortAddrs := func(as []netip.Addr) []netip.Addr { slices.SortFunc(as, netip.Addr.Compare); return as }
	if d := cmp.Diff(sortAddrs(want), sortAddrs(got), addrs); d != "" {
		t.Errorf("HostAddresses (-standard library +per link):\n%s", d)
	}
	if d := cmp.Diff(sortAddrs(want), sortAddrs(fallback), addrs); d != "" {
		t.Errorf("HostAddresses without the kernel's filter (-standard library +one dump):\n%s", d)
	}
	if len(want) < 6 {
		t.Errorf("only %d addresses listed: %v", len(want), want)
	}
	if all, err := HostAddresses("absent0"); err != nil || len(all) != len(got)+3 {
		t.Errorf("HostAddresses without a dummy = %v, %v; want every address (%d)", all, err, len(got)+3)
	}
}
