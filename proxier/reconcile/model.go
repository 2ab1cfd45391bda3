package reconcile

import (
	"net/netip"
	"time"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// model is what the Reconciler believes the kernel holds of what kubevs owns, and the
// reference counts of what the desired Services want.
type model struct {
	// vs are the owned virtual servers in the kernel with their real servers' weights.
	vs map[ipvs.Key]*vsState
	// bound are the addresses on the dummy link.
	bound map[netip.Addr]struct{}
	// entries are the members of the owned sets.
	entries map[desired.SetEntry]struct{}
	// vipRefs and entryRefs count the desired Services that want an address or a member.
	vipRefs   map[netip.Addr]int
	entryRefs map[desired.SetEntry]int
	// vsOwner maps a wanted virtual server to the Service that wants it.
	draining map[drainKey]time.Time
	// loaded is true once the model was read from the kernel and no error since made it
	// doubtful.
	loaded bool
	// sets are the owned sets that exist.
	sets map[string]ipset.Family
}

type vsState struct {
	vs ipvs.VirtualServer
	rs map[netip.AddrPort]int // weight
}

type drainKey struct {
	vs ipvs.Key
	rs netip.AddrPort
}

func newModel() model {
	return model{
		vs:        map[ipvs.Key]*vsState{},
		bound:     map[netip.Addr]struct{}{},
		entries:   map[desired.SetEntry]struct{}{},
		vipRefs:   map[netip.Addr]int{},
		entryRefs: map[desired.SetEntry]int{},
		draining:  map[drainKey]time.Time{},
		sets:      map[string]ipset.Family{},
	}
}
