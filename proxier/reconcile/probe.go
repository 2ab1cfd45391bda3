package reconcile

// The probe: what a periodic resync reads when a full read is not due. A full read lists
// every real server of every virtual server, one netlink dump each (IPVS has no dump of all
// destinations): at 10,000 Services that is seconds of CPU in an emulated VM, every
// syncPeriod, on a node where nothing changed. kube-proxy's nftables and iptables modes
// face the same cost and answer it the same way: a full sync only now and then, a cheap
// check in between for the faults that happen (a firewall reload, a flush).
//
// So the full read runs on a CPU budget (Options.FullReadBudget): the next one is due when
// the time since the last one began is at least its duration divided by the budget (never
// later than MaxFullReadInterval). Between full reads a periodic resync probes:
//   - the fixed rules, as a full read does (Verify);
//   - the addresses of the dummy link (one dump), by count and by the XOR of their hashes,
//     which the model keeps as it binds and unbinds (refs.sum): no copy of the model's;
//   - the owned sets' member counts, from their headers (ipset.Interface.Counts, one dump), against
//     the members the model holds: a flushed or emptied set, a member added or deleted;
//   - the real servers of ProbeSample virtual servers the model holds, picked anew each
//     time (a virtual server gone answers ErrNotFound): `ipvsadm -C`, or a fraction f of
//     the virtual servers deleted, is seen with probability 1-(1-f)^64.
//
// The probe does not list the virtual servers: that one dump took 146 ms of each 212 ms
// probe at 10,000 Services in the emulated test VM, most of the idle CPU.
//
// A probe that sees anything differ (or fails) becomes a full read at once, in the same
// Run, so the resync repairs as it would have; as BeginRead copied no Services for a probe,
// the caller has them copied then (CopyServices, under its lock) and the read compared
// with them without the lock (Plan), as for a full read. A probe compares the kernel with BeginRead's
// copy of the model, so a partial sync that writes while it reads can make it differ: the
// cost is a full read, never a wrong repair (the full read is a plan, plan.go). What it
// cannot see (a virtual server or a real server deleted outside its sample, a scheduler
// changed, an extra virtual server) waits for the next full read.
// A clean probe commits no kernel picture: the resync converges only the Services that
// changed since the model last took them (takeServices), and the objects that failed.

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
)

const (
	// ProbeSample is how many virtual servers a probe reads the real servers of.
	ProbeSample = 64
	// MaxFullReadInterval is the longest the budget puts the full read off.
	MaxFullReadInterval = time.Hour
)

// The kinds of a Reading's Run, for logs and metrics (Reading.Kind).
const (
	ReadFull      = "full"      // a full read was due
	ReadProbe     = "probe"     // a probe, which found the kernel as the model holds it
	ReadEscalated = "escalated" // a probe that found a difference, then a full read
)

// probe is BeginRead's copy of what the model holds, for a probe to compare the kernel with.
type probe struct {
	// bound and boundSum are the count and digest (refs.digest) of the addresses bound.
	bound    int
	boundSum uint64
	members  int
	sample   []sampled
}

// sampled is a copy of the real servers the model holds for the virtual server k.
type sampled struct {
	k  ipvs.Key
	rs rsList
}

// fullReadDue reports whether the next Reading must read everything: none was made since
// Start, there is no budget, or the budget allows it (see the top of this file).
func (r *Reconciler) fullReadDue() bool {
	b := r.opts.FullReadBudget
	if b <= 0 || r.lastFullRead.IsZero() {
		return true
	}
	wait := min(time.Duration(float64(r.fullReadCost)/b), MaxFullReadInterval)
	return r.opts.Now().Sub(r.lastFullRead) >= wait
}

// newProbe copies what a probe compares from the model: the digest of the addresses, the
// sample's real servers.
func (r *Reconciler) newProbe() *probe {
	p := &probe{members: r.m.entries.len()}
	p.bound, p.boundSum = r.m.vips.digest()
	for k, st := range r.m.vs { // map order: a different sample each time
		if len(p.sample) == ProbeSample {
			break
		}
		p.sample = append(p.sample, sampled{k: k, rs: slices.Clone(st.rs)})
	}
	return p
}

// differs reads what p covers and says what differs from p, or "" when nothing does. A
// read that fails is a difference too (the full read then reports it).
func (p *probe) differs(k Kernel, dummy string) string {
	addrs, err := k.Link.Addresses(dummy)
	if err != nil && !errors.Is(err, link.ErrNotFound) {
		return err.Error()
	}
	if len(addrs) != p.bound {
		return fmt.Sprintf("%s holds %d addresses, the model %d", dummy, len(addrs), p.bound)
	}
	var sum uint64
	for _, a := range addrs {
		sum ^= keyHash(a.Unmap())
	}
	if sum != p.boundSum {
		return fmt.Sprintf("%s holds other addresses than the model's %d", dummy, p.bound)
	}
	counts, err := k.IPSet.Counts()
	if err != nil {
		return err.Error()
	}
	members := 0
	for _, name := range desired.OwnedSets() {
		members += counts[name]
	}
	if members != p.members {
		return fmt.Sprintf("the owned sets hold %d members, the model %d", members, p.members)
	}
	for _, st := range p.sample {
		rss, err := k.IPVS.RealServers(st.k)
		if err != nil {
			return err.Error() // names the virtual server
		}
		if !st.rs.same(rss) {
			return fmt.Sprintf("the real servers of %s differ", st.k)
		}
	}
	return ""
}

// runProbe probes; on any difference it reads everything (full). It returns what differed.
func (rd *Reading) runProbe(full func()) string {
	why := rd.probe.differs(rd.k, rd.dummy)
	rd.probe = nil
	if why != "" {
		full()
	}
	return why
}
