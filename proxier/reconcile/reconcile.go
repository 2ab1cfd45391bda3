// Package reconcile is the only code of the proxier that changes the kernel. It turns the
// values computed by package desired into IPVS virtual and real servers, addresses on the
// dummy link, ipset members, a fixed iptables ruleset and sysctls, issuing only the
// difference between what it wants and what it knows the kernel holds.
//
// The Reconciler keeps its own model of what it programmed. Start reads (adopts) what the
// kernel already holds, so a restart changes nothing that is already right: no flush, no
// weight reset, no dropped connection. Apply then costs work proportional to the changed
// Services only; Resync re-reads the kernel and converges everything (periodically, and
// after any failure): the fixed rules (one iptables-save per table), the sets and their
// members, the dummy link and its addresses, and the virtual servers, so that what someone
// else flushed is put back (see Drift). A periodic Resync can read the kernel without the
// caller's lock (BeginRead, Reading.Run, ResyncRead: reading.go), so no change waits for it.
//
// It also sets IPVS's connection timeouts (Start), deletes the conntrack flows that would
// keep traffic on a dead end, all of a sync's in one call and retried until done
// (flows.go), and records drain deadlines so a restart does not re-arm them (drainstate.go).
//
// What kubevs owns: the dummy link kube-ipvs0 and its addresses; the IPVS virtual servers
// whose address is bound to kube-ipvs0 (the rule kube-proxy's IPVS mode uses too) or that a
// member of kubevs's sets marks (cluster IPs, externalIPs, LoadBalancer ingress, NodePorts,
// whose virtual servers sit on node addresses kubevs never binds: see marks), except those
// whose address is in ExcludeCIDRs, plus those it creates itself; the sets named by
// desired.OwnedSets; the KUBE-* chains of package desired. Nothing else is ever changed,
// except kube-proxy's nftables-mode tables, which kube-proxy's own IPVS mode deletes too,
// and the iptables chains only kube-proxy's iptables mode writes: they go once, after the
// first Resync (leftovers.go).
package reconcile

import (
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/conntrack"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/proxier/sysctl"
)

// Kernel holds the adapters the Reconciler writes through.
type Kernel struct {
	IPVS      ipvs.Interface
	Link      link.Interface
	IPSet     ipset.Interface
	Netfilter netfilter.Interface
	Conntrack conntrack.Interface
	Sysctl    sysctl.Interface
	// NFTables removes kube-proxy's nftables-mode tables after the first Resync (see
	// removeKubeProxyTables); nil leaves nftables alone.
	NFTables netfilter.NFTables
	// KubeProxyChains removes kube-proxy's iptables-mode chains after the first Resync (see
	// removeKubeProxyChains); nil leaves them alone.
	KubeProxyChains netfilter.KubeProxyChains
}

// DefaultDrainTimeout bounds how long a removed TCP or SCTP real server keeps its open
// connections (at weight 0) before it is deleted anyway.
const DefaultDrainTimeout = 60 * time.Second

// Options configure a Reconciler.
type Options struct {
	// Desired are the options the desired state was computed with; Global uses them.
	Desired desired.Options
	// ExcludeCIDRs protect IPVS virtual servers kubevs did not create: one whose address
	// is inside them is never adopted or deleted as a leftover (a Service that wants
	// exactly that virtual server still gets it).
	ExcludeCIDRs []netip.Prefix
	// DrainTimeout bounds graceful drain; zero means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// NoDrain deletes a real server no Service wants at once, as UDP ones always are,
	// instead of draining it at weight 0 (DrainTimeout is then unused). Adopted weight-0
	// real servers nobody wants are deleted by the first Resync.
	NoDrain bool
	// DrainFile records the drain deadlines across restarts (see drainstate.go); empty:
	// in memory only, so a restart gives adopted drains a full DrainTimeout again.
	DrainFile string
	// Timeouts are IPVS's connection timeouts, set by Start (zero ones left as they are).
	Timeouts ipvs.Timeouts
	// RaisedSysctls are numeric parameters Start raises to at least their value and never
	// lowers (the conntrack limits and timeouts; see RaiseSysctls).
	RaisedSysctls []desired.Sysctl
	// Recorded are the sysctl changes earlier runs recorded (the daemon keeps them for
	// --cleanup): a route_localnet they set is turned back when the options no longer want
	// it (withdrawLocalnet).
	Recorded []SysctlChange
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// QuarantineAfter is how many converges in a row of one virtual server may fail before
	// it is quarantined (see quarantine.go); zero means DefaultQuarantineAfter, negative
	// never quarantines.
	QuarantineAfter int
	// QuarantineRetry is the first retry delay of a quarantined virtual server; zero means
	// DefaultQuarantineRetry.
	QuarantineRetry time.Duration
	// FullReadBudget is the share of one CPU the periodic resync's full read of the kernel
	// may use on average (0.005: half a percent); between full reads a Reading probes
	// (probe.go). Zero: every Reading reads everything.
	FullReadBudget float64
}

// SysctlChange records a parameter Start changed, so an operator or --cleanup may restore it.
type SysctlChange struct {
	Name, Old, New string
}

// Reconciler programs the kernel. Its methods must not be called concurrently; a Reading's
// Run (see BeginRead) may run beside them.
type Reconciler struct {
	k    Kernel
	opts Options
	m    model
	// services is what each Service was last asked to hold.
	services map[types.NamespacedName]desired.Service
	changed  []SysctlChange
	global   desired.GlobalState
	started  bool
	// restored are the drain deadlines read from DrainFile, until the first Resync;
	// savedDrains is what DrainFile holds; drainsRead: it was read.
	restored    map[drainKey]time.Time
	savedDrains map[drainKey]time.Time
	drainsRead  bool
	// ctQueue holds the conntrack filters whose flows wait to be deleted (flows.go).
	ctQueue map[conntrack.Filter]struct{}
	drift   Drift
	// failures are the virtual servers whose last converges failed; quarantines counts
	// quarantine events by reason.
	failures    map[ipvs.Key]*failure
	quarantines map[string]int
	// degraded are the optional Start steps that failed; noIPv6 is set when IPv6 is
	// disabled for one of them (see degrade.go).
	degraded []Degradation
	noIPv6   bool
	// kubeProxyTablesGone: kube-proxy's nftables tables were removed (or never there).
	kubeProxyTablesGone bool
	// kubeProxyChainsGone: kube-proxy's iptables-mode chains of the family were removed (or
	// never there).
	kubeProxyChainsGone map[netfilter.Family]bool
	// rulesAfterVS: kube-proxy's iptables mode served Services at Start, so the fixed rules
	// wait for the virtual servers of the first Resync (kubeProxyServes).
	rulesAfterVS bool
	// readGen numbers the Readings (BeginRead); dirty are the objects written since the
	// last one began, nil when there is none (see reading.go).
	readGen uint64
	dirty   *dirty
	// resynced counts the objects the last resync converged: all of them under the lock,
	// only those that differ from a Reading's plan (plan.go).
	resynced int
	// lastFullRead is when the last read of everything began, fullReadCost how long it
	// took: the budget of the next one (probe.go).
	lastFullRead time.Time
	fullReadCost time.Duration
}

// New returns a Reconciler over k. It touches nothing until Start.
func New(k Kernel, o Options) *Reconciler {
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.QuarantineAfter == 0 {
		o.QuarantineAfter = DefaultQuarantineAfter
	}
	if o.QuarantineRetry <= 0 {
		o.QuarantineRetry = DefaultQuarantineRetry
	}
	return &Reconciler{k: k, opts: o, services: map[types.NamespacedName]desired.Service{}, m: newModel(),
		failures: map[ipvs.Key]*failure{}, quarantines: map[string]int{}}
}

// SysctlChanges returns the parameters Start changed and their previous values.
func (r *Reconciler) SysctlChanges() []SysctlChange { return r.changed }

// Draining reports how many real servers are at weight 0 waiting for their connections
// to end. While it is non-zero the caller should call FinishDrains now and then (every
// second or so); Resync also finishes drains, Apply does not.
func (r *Reconciler) Draining() int { return len(r.m.draining) }
