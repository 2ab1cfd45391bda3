package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// Kernel constants from include/uapi/linux/ip_vs.h.
const (
	// svcFlagPersistent is IP_VS_SVC_F_PERSISTENT. It is the only service flag kubevs writes:
	// the kernel sets IP_VS_SVC_F_HASHED itself and refuses to hash a new service that
	// already carries it, so listings are masked with this bit before comparison.
	svcFlagPersistent = 0x0001
	// netmask4 and netmask6 are the persistence granularity: one client address. The kernel
	// reads the v4 netmask as a mask and the v6 one as a prefix length, and refuses any v6
	// service whose prefix length is outside 1..128, persistent or not.
	netmask4 = 0xFFFFFFFF
	netmask6 = 128
)

var protocols = map[Protocol]uint16{TCP: unix.IPPROTO_TCP, UDP: unix.IPPROTO_UDP, SCTP: unix.IPPROTO_SCTP}

func family(a netip.Addr) uint16 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// toService turns a virtual server into the netlink form: NAT is a property of real servers,
// so nothing here selects the forwarding method.
func toService(vs VirtualServer) (*libipvs.Service, error) {
	addr := vs.Address.Unmap()
	if !addr.IsValid() {
		return nil, fmt.Errorf("virtual server %s: no address", vs.Key)
	}
	proto, ok := protocols[vs.Protocol]
	if !ok {
		return nil, fmt.Errorf("virtual server %s: unsupported protocol %q", vs.Key, vs.Protocol)
	}
	s := &libipvs.Service{
		Address:       net.IP(addr.AsSlice()),
		Protocol:      proto,
		Port:          vs.Port,
		SchedName:     vs.Scheduler,
		AddressFamily: family(addr),
		Netmask:       netmask4,
	}
	if addr.Is6() {
		s.Netmask = netmask6
	}
	if vs.Persistent {
		s.Flags = svcFlagPersistent
		s.Timeout = vs.Timeout
	}
	return s, nil
}

// keyService is the part of a service the kernel looks it up by (the scheduler is ignored).
func keyService(k Key) (*libipvs.Service, error) {
	return toService(VirtualServer{Key: k, Scheduler: "rr"})
}

// toDestination turns a real server into the netlink form, always masquerading (NAT). The
// kernel itself switches a destination whose address is local to local-node forwarding.
func toDestination(k Key, rs RealServer) (*libipvs.Destination, error) {
	addr := rs.Address.Unmap()
	switch {
	case !addr.IsValid():
		return nil, fmt.Errorf("real server of %s: no address", k)
	case addr.Is4() != k.Address.Unmap().Is4():
		// The kernel accepts mixed families only for tunnelling, never for NAT.
		return nil, fmt.Errorf("real server %s of %s: address family differs from the virtual server's", rs.AddrPort(), k)
	case rs.Weight < 0:
		return nil, fmt.Errorf("real server %s of %s: negative weight %d", rs.AddrPort(), k, rs.Weight)
	}
	return &libipvs.Destination{
		Address:         net.IP(addr.AsSlice()),
		Port:            rs.Port,
		Weight:          int(rs.Weight),
		ConnectionFlags: libipvs.ConnectionFlagMasq,
		AddressFamily:   family(addr),
	}, nil
}

// Errno meanings differ by command (see net/netfilter/ipvs/ip_vs_ctl.c): ESRCH always means
// the virtual server is absent; ENOENT means an absent real server for destination commands
// but an unknown scheduler (no ip_vs_<name> module) when adding or editing a service.
type errnoMeaning int

const (
	serviceCmd errnoMeaning = iota
	destCmd
)

// mapErr wraps a kernel error so that errors.Is matches both the errno and, where it applies,
// ErrExist or ErrNotFound.
func mapErr(err error, cmd errnoMeaning) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch {
	case errno == unix.EEXIST:
		return fmt.Errorf("%w (%w)", ErrExist, err)
	case errno == unix.ESRCH:
		return fmt.Errorf("virtual server %w (%w)", ErrNotFound, err)
	case errno == unix.ENOENT && cmd == destCmd:
		return fmt.Errorf("real server %w (%w)", ErrNotFound, err)
	case errno == unix.ENOENT && cmd == serviceCmd:
		return fmt.Errorf("scheduler not available in this kernel (%w)", err)
	}
	return err
}
