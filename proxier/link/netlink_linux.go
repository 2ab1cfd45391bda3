package link

// Addresses are bound the way kube-proxy's IPVS mode binds Service IPs to kube-ipvs0: as host
// prefixes (/32, /128) with the kernel's default scope, global (RT_SCOPE_UNIVERSE).
//
// Scope does not decide whether the node accepts traffic for a VIP: for every address, of any
// scope, the kernel adds a route of type local to its "local" table, and that route is what
// makes packets to the VIP reach IPVS. Scope only limits which addresses the kernel may pick
// as a source. A host-scoped VIP would differ from kube-proxy's for operators and tools that
// compare the two for no gain: the kernel picks an address of another link as source only
// when the outgoing link has none of its own, and node-originated traffic to VIPs is
// masqueraded by kubevs's netfilter rules anyway. ARP for VIPs is governed by arp_ignore and
// arp_announce (set by the proxier under strict ARP), which ignore scope. IPv6 has no scope
// to choose: the kernel derives it from the address. IPv6 VIPs are added with IFA_F_NODAD,
// so they are usable at once instead of tentative (dummy links skip DAD anyway).
//
// The link is set up. kube-proxy leaves kube-ipvs0 down, which works for IPv4 because the
// local route exists either way; an up link also gives IPv6 VIPs a fully configured state.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkLinks manages links over a rtnetlink socket bound to one network namespace.
type netlinkLinks struct {
	h     *netlink.Handle
	addrs *addrReader // lists a link's addresses (addrdump_linux.go)

	// known caches the links addresses are added to and deleted from, by name: a cold sync
	// of 10,000 Services adds 10,000 VIPs, and a lookup before each doubled the round
	// trips. EnsureDummy (every full resync) refreshes an entry; a write that finds the
	// link gone (ENODEV) looks it up again once.
	mu    sync.Mutex
	known map[string]netlink.Link
}

var _ Interface = (*netlinkLinks)(nil)

// New returns links managed in the calling thread's network namespace (a caller that wants
// another namespace locks its goroutine there first). It is safe for concurrent use and also
// implements io.Closer, which releases its socket.
func New() (Interface, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket: %w", err)
	}
	addrs, err := newAddrReader()
	if err != nil {
		h.Close()
		return nil, err
	}
	return &netlinkLinks{h: h, addrs: addrs, known: map[string]netlink.Link{}}, nil
}

// Close releases the socket.
func (n *netlinkLinks) Close() error {
	n.h.Close()
	n.addrs.close()
	return nil
}

// byName looks a link up, mapping its absence to ErrNotFound.
func (n *netlinkLinks) byName(name string) (netlink.Link, error) {
	l, err := n.h.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
		return nil, fmt.Errorf("link %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find link %s: %w", name, err)
	}
	return l, nil
}

// cached returns the link name from the cache, looking it up when absent.
func (n *netlinkLinks) cached(name string) (netlink.Link, error) {
	n.mu.Lock()
	l, ok := n.known[name]
	n.mu.Unlock()
	if ok {
		return l, nil
	}
	l, err := n.byName(name)
	if err == nil {
		n.remember(name, l)
	}
	return l, err
}

// remember caches l as the link name; forget drops the entry.
func (n *netlinkLinks) remember(name string, l netlink.Link) {
	n.mu.Lock()
	n.known[name] = l
	n.mu.Unlock()
}

func (n *netlinkLinks) forget(name string) {
	n.mu.Lock()
	delete(n.known, name)
	n.mu.Unlock()
}

// onLink runs write on the link name (cached), and once more on a fresh lookup when the
// cached link is gone (ENODEV: deleted, perhaps created again with another index).
func (n *netlinkLinks) onLink(name string, write func(netlink.Link) error) error {
	l, err := n.cached(name)
	if err != nil {
		return err
	}
	if err = write(l); errors.Is(err, unix.ENODEV) {
		n.forget(name)
		if l, err = n.cached(name); err == nil {
			err = write(l)
		}
	}
	return err
}

// dummy looks a link up and checks that it is a dummy.
func (n *netlinkLinks) dummy(name string) (netlink.Link, error) {
	l, err := n.byName(name)
	if err != nil {
		return nil, err
	}
	if l.Type() != "dummy" {
		return nil, fmt.Errorf("link %s of type %s: %w", name, l.Type(), ErrNotDummy)
	}
	return l, nil
}

// EnsureDummy creates the dummy link if absent and sets it up; a link of that name that is
// not a dummy is an error matching ErrNotDummy.
func (n *netlinkLinks) EnsureDummy(name string) error {
	l, err := n.dummy(name)
	if errors.Is(err, ErrNotFound) {
		err = n.h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}})
		if err != nil && !errors.Is(err, unix.EEXIST) { // EEXIST: created meanwhile, check it below
			return fmt.Errorf("create dummy link %s: %w", name, err)
		}
		l, err = n.dummy(name)
	}
	if err != nil {
		return fmt.Errorf("ensure dummy link: %w", err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := n.h.LinkSetUp(l); err != nil {
			return fmt.Errorf("set dummy link %s up: %w", name, err)
		}
	}
	n.remember(name, l)
	return nil
}

// DeleteDummy removes the dummy link and its addresses; ErrNotFound if absent, ErrNotDummy
// if the link is something else.
func (n *netlinkLinks) DeleteDummy(name string) error {
	n.forget(name)
	l, err := n.dummy(name)
	if err == nil {
		err = n.h.LinkDel(l)
	}
	if err != nil {
		return fmt.Errorf("delete dummy link %s: %w", name, err)
	}
	return nil
}

// Addresses lists the host-prefix addresses (/32, /128) on the link, sorted; other addresses,
// such as the IPv6 link-local one the kernel adds, are left out.
func (n *netlinkLinks) Addresses(name string) ([]netip.Addr, error) {
	l, err := n.byName(name)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out, err := retryDump(func() ([]netip.Addr, error) { return n.addrs.addresses(l.Attrs().Index) })
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

// HostAddresses lists the addresses (any prefix) of every link in the calling thread's
// network namespace but the one named except (kube-ipvs0: its VIPs are no node addresses;
// absent: none left out). It dumps the links, then the addresses of each link but except,
// filtered by the kernel (strict checking): a dump of every address decoded and dropped
// the 10,000 VIPs of 10,000 Services at every full sync, the proxier's largest idle cost
// after the probe's own dump. On a kernel that does not filter by link (older than 4.20) it
// makes one dump of every address instead. net.Interface.Addrs dumps every address of the
// namespace once per link: with 10,000 VIPs and a hundred pods' veths, a million addresses
// decoded per call.
func HostAddresses(except string) ([]netip.Addr, error) {
	r, err := newAddrReader()
	if err != nil {
		return nil, err
	}
	defer r.close()
	return r.hostAddresses(except)
}

// hostAddresses is HostAddresses over r.
func (r *addrReader) hostAddresses(except string) ([]netip.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list the host's links: %w", err)
	}
	skip := -1
	for _, i := range ifs {
		if i.Name == except {
			skip = i.Index
		}
	}
	var out []netip.Addr
	for _, i := range ifs {
		if i.Index == skip {
			continue
		}
		as, err := retryDump(func() ([]netip.Addr, error) { return r.linkAddresses(i.Index) })
		switch {
		case errors.Is(err, errUnfiltered):
			out, err = retryDump(func() ([]netip.Addr, error) { return r.allBut(skip) })
			if err != nil {
				return nil, fmt.Errorf("list the host's addresses: %w", err)
			}
			return out, nil
		case errors.Is(err, unix.ENODEV): // the link went meanwhile (a pod's veth)
			continue
		case err != nil:
			return nil, fmt.Errorf("list the addresses of %s: %w", i.Name, err)
		}
		out = append(out, as...)
	}
	return out, nil
}

// retryDump runs dump again, up to three times in all, while the kernel says a concurrent
// change interrupted it.
func retryDump(dump func() ([]netip.Addr, error)) ([]netip.Addr, error) {
	var out []netip.Addr
	var err error
	for range 3 {
		if out, err = dump(); !errors.Is(err, errDumpInterrupted) {
			break
		}
	}
	return out, err
}

// hostAddr is addr as a host prefix in netlink's form.
func hostAddr(addr netip.Addr) (*netlink.Addr, error) {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return nil, errors.New("invalid address")
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())}}
	if addr.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a, nil
}

// AddAddress binds addr as a host prefix; ErrExist if bound, ErrNotFound if no such link.
func (n *netlinkLinks) AddAddress(name string, addr netip.Addr) error {
	a, err := hostAddr(addr)
	if err != nil {
		return fmt.Errorf("add address %s to %s: %w", addr, name, err)
	}
	err = n.onLink(name, func(l netlink.Link) error { return n.h.AddrAdd(l, a) })
	if errors.Is(err, unix.EEXIST) {
		err = fmt.Errorf("%w (%w)", ErrExist, err)
	}
	if err != nil {
		return fmt.Errorf("add address %s to %s: %w", addr, name, err)
	}
	return nil
}

// DeleteAddress unbinds addr; ErrNotFound if it is not bound or the link is absent.
func (n *netlinkLinks) DeleteAddress(name string, addr netip.Addr) error {
	a, err := hostAddr(addr)
	if err != nil {
		return fmt.Errorf("delete address %s from %s: %w", addr, name, err)
	}
	err = n.onLink(name, func(l netlink.Link) error { return n.h.AddrDel(l, a) })
	// The kernel answers EADDRNOTAVAIL for an address that is not on the link.
	if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) {
		err = fmt.Errorf("address %w (%w)", ErrNotFound, err)
	}
	if err != nil {
		return fmt.Errorf("delete address %s from %s: %w", addr, name, err)
	}
	return nil
}
