// Package conntrack removes connection-tracking entries that would send traffic to an endpoint
// that is gone (stale UDP flows, a deleted pod's flows), over netlink. conntracktest holds a fake.
package conntrack

import (
	"net/netip"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Interface deletes flows. Each call returns how many entries it removed; zero is not an error.
type Interface interface {
	// DeleteByOrigDst removes flows whose original destination is addr:port/proto
	// (a Service VIP that no longer exists or lost all its endpoints).
	DeleteByOrigDst(proto ipvs.Protocol, addr netip.Addr, port uint16) (int, error)
	// DeleteByReplySrc removes flows whose reply source is addr:port/proto
	// (flows DNATed to an endpoint that went away). Port 0 means any port.
	DeleteByReplySrc(proto ipvs.Protocol, addr netip.Addr, port uint16) (int, error)
	// DeleteByAddr removes every flow to or from addr (a deleted pod's IP), any protocol.
	DeleteByAddr(addr netip.Addr) (int, error)
	// Delete removes every flow one of filters matches, reading each family's table once
	// for all of them. It goes on past a flow it cannot delete and returns the count and
	// the failures joined; deleting again is harmless.
	Delete(filters []Filter) (int, error)
}
