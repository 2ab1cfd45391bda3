package reconcile

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// model is what the Reconciler believes the kernel holds of what kubevs owns (vs, and what
// vips and entries hold), and what the desired Services want, with reference counts, since
// two Services may want the same address or set member (and, for a moment while a
// ClusterIP moves from a deleted Service to a new one, the same virtual server).
type model struct {
	vs map[ipvs.Key]*vsState
	// vips are the addresses bound to the dummy link and those Services want, entries the
	// owned sets' members and those Services want (see refs).
	vips    *refs[netip.Addr]
	entries *refs[desired.SetEntry]

	// wantVS holds the first Service to want each virtual server, moreVS the others in the
	// order they came, for the few virtual servers several Services want: a slice of
	// owners for each key cost 0.2 MB of the proxier's heap at 10,000 Services.
	wantVS map[ipvs.Key]owner
	moreVS map[ipvs.Key][]owner

	// draining maps a real server at weight 0 that no Service wants to its deadline.
	draining map[drainKey]time.Time
	// fresh is true while the model is known to match the kernel: right after a read, and
	// until a write or an error.
	fresh bool
	// realServers counts the real servers of vs, kept by the writes (see countWrites) and
	// counted again whenever vs is replaced (recount): Stats after every sync must not walk
	// every virtual server (at 10,000 it took 5 s of a cold sync's CPU in the test VM).
	realServers int
}

// rsLen is how many real servers the model holds for k.
func (m *model) rsLen(k ipvs.Key) int {
	if st := m.vs[k]; st != nil {
		return len(st.rs)
	}
	return 0
}

// recount counts realServers anew, after vs was replaced.
func (m *model) recount() {
	m.realServers = 0
	for _, st := range m.vs {
		m.realServers += len(st.rs)
	}
}

// countWrites runs write, which may change k's real servers (or k itself), and keeps
// realServers up to date.
func (m *model) countWrites(k ipvs.Key, write func() error) error {
	before := m.rsLen(k)
	err := write()
	m.realServers += m.rsLen(k) - before
	return err
}

// pruneDrains drops the drain deadlines the model no longer backs: of a virtual server it
// does not hold, or of a real server whose weight is not 0 (one the model lacks counts as
// 0).
func (m *model) pruneDrains() {
	for dk := range m.draining {
		st, ok := m.vs[dk.vs]
		if !ok {
			delete(m.draining, dk)
			continue
		}
		if w, _ := st.rs.get(dk.rs); w != 0 {
			delete(m.draining, dk)
		}
	}
}

// vsState is the model's picture of one virtual server (its key is the map's): its
// settings and its real servers.
type vsState struct {
	settings
	// rs are the real servers. When shared, rs is a wanted list (desired.VirtualServer's,
	// never modified) that the kernel was found or made to hold: a virtual server in sync
	// costs the model no copy of its real servers (at 50,000 Services of 10, 12 MB). The
	// methods that change rs copy it first.
	rs     rsList
	shared bool
}

// own makes rs the state's own list, to change it.
func (st *vsState) own() {
	if st.shared {
		st.rs, st.shared = slices.Clone(st.rs), false
	}
}

// setRS, delRS and addRS change rs as rsList's set, del and addAll do.
func (st *vsState) setRS(ap netip.AddrPort, w int32) {
	if w0, ok := st.rs.get(ap); ok && w0 == w {
		return
	}
	st.own()
	st.rs.set(ap, w)
}

func (st *vsState) delRS(ap netip.AddrPort) {
	if _, ok := st.rs.find(ap); !ok {
		return
	}
	st.own()
	st.rs.del(ap)
}

func (st *vsState) addRS(rss []ipvs.RealServer) {
	if len(rss) == 0 {
		return
	}
	st.own()
	st.rs.addAll(rss)
}

// share makes rs want when it holds what want does, and drops the state's own copy.
func (st *vsState) share(want []desired.RealServer) {
	if !st.shared && st.rs.equal(want) {
		st.rs, st.shared = rsList(want), true
	}
}

// settings are what UpdateVirtualServer can change of a virtual server. A vsState holds
// them alone, not the whole ipvs.VirtualServer, whose Key repeats the map's: 48 bytes a
// virtual server instead of 96.
type settings struct {
	scheduler  string
	persistent bool
	timeout    uint32
}

func settingsOf(v ipvs.VirtualServer) settings {
	return settings{scheduler: v.Scheduler, persistent: v.Persistent, timeout: v.Timeout}
}

// same reports whether v has the settings s (the timeout counts only when persistent).
func (s settings) same(v ipvs.VirtualServer) bool {
	if s.scheduler != v.Scheduler || s.persistent != v.Persistent {
		return false
	}
	return !s.persistent || s.timeout == v.Timeout
}

type owner struct {
	name types.NamespacedName
	vs   *desired.VirtualServer
}

type drainKey struct {
	vs ipvs.Key
	rs netip.AddrPort
}

func newModel() model {
	return model{
		vs:       map[ipvs.Key]*vsState{},
		vips:     newRefs[netip.Addr](),
		entries:  newRefs[desired.SetEntry](),
		wantVS:   map[ipvs.Key]owner{},
		moreVS:   map[ipvs.Key][]owner{},
		draining: map[drainKey]time.Time{},
	}
}

// want returns the desired virtual server for k, if any Service wants it. When several do
// (a conflict the API server normally prevents), the Service first by name wins.
func (m *model) want(k ipvs.Key) (*desired.VirtualServer, types.NamespacedName, bool) {
	best, ok := m.wantVS[k]
	if !ok {
		return nil, types.NamespacedName{}, false
	}
	for _, o := range m.moreVS[k] {
		if o.name.String() < best.name.String() {
			best = o
		}
	}
	return best.vs, best.name, true
}

// addRefs counts what s wants; subRefs uncounts it. Both record every object they touch
// in t (when not nil) so the caller can converge exactly those.
func (m *model) addRefs(name types.NamespacedName, s *desired.Service, t *touched) {
	for i := range s.VirtualServers {
		vs := &s.VirtualServers[i]
		o := owner{name: name, vs: vs}
		if _, ok := m.wantVS[vs.Key]; ok {
			m.moreVS[vs.Key] = append(m.moreVS[vs.Key], o)
		} else {
			m.wantVS[vs.Key] = o
		}
		if t != nil {
			t.vs = append(t.vs, vs.Key)
		}
	}
	for _, a := range s.VIPs {
		m.vips.ref(a)
		if t != nil {
			t.vips = append(t.vips, a)
		}
	}
	for _, e := range s.Entries {
		m.entries.ref(e)
		if t != nil {
			t.entries = append(t.entries, e)
		}
	}
}

func (m *model) subRefs(name types.NamespacedName, s *desired.Service, t *touched) {
	for i := range s.VirtualServers {
		k := s.VirtualServers[i].Key
		m.unwant(k, name)
		t.vs = append(t.vs, k)
	}
	for _, a := range s.VIPs {
		m.vips.unref(a)
		t.vips = append(t.vips, a)
	}
	for _, e := range s.Entries {
		m.entries.unref(e)
		t.entries = append(t.entries, e)
	}
}

// unwant drops name from the owners of k, keeping the others in their order.
func (m *model) unwant(k ipvs.Key, name types.NamespacedName) {
	first, ok := m.wantVS[k]
	if !ok {
		return
	}
	more, shared := m.moreVS[k]
	if !shared {
		if first.name == name {
			delete(m.wantVS, k)
		}
		return
	}
	os := slices.DeleteFunc(append([]owner{first}, more...), func(o owner) bool { return o.name == name })
	switch len(os) {
	case 0:
		delete(m.wantVS, k)
		delete(m.moreVS, k)
	case 1:
		m.wantVS[k] = os[0]
		delete(m.moreVS, k)
	default:
		m.wantVS[k], m.moreVS[k] = os[0], os[1:]
	}
}

// touched lists the objects a change may affect, to converge them and nothing else.
type touched struct {
	vs      []ipvs.Key
	vips    []netip.Addr
	entries []desired.SetEntry
}

// sort orders and deduplicates t so operations are issued in a stable order.
func (t *touched) sort() {
	slices.SortFunc(t.vs, desired.CompareKeys)
	t.vs = slices.Compact(t.vs)
	slices.SortFunc(t.vips, netip.Addr.Compare)
	t.vips = slices.Compact(t.vips)
	slices.SortFunc(t.entries, desired.CompareEntries)
	t.entries = slices.Compact(t.entries)
}

// excluded reports whether a is inside one of cidrs.
func excluded(a netip.Addr, cidrs []netip.Prefix) bool {
	for _, p := range cidrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// protoEntry is how a virtual server key appears in the cluster-IP set, for ownership tests.
func protoEntry(k ipvs.Key) string {
	return k.Address.String() + "," + strings.ToLower(string(k.Protocol)) + ":" + strconv.Itoa(int(k.Port))
}
