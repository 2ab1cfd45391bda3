// Package status owns `kubevs status`: a read-only report of what the node's IPVS table
// holds for each Kubernetes Service (like `ipvsadm -Ln`, with Service names and connection
// counts) and of the drift between the kernel and what the API server asks for: virtual
// servers, addresses on the dummy link, and kubevs's sets, their members and its iptables
// chains and jumps (see fixed.go).
//
// The desired side is computed with the proxier's own pure code (desired.ComputeService)
// from Services and EndpointSlices listed from the API server; the kernel side is read
// through the proxier's adapters with read-only calls only. Compare is a pure function of
// the two, so the report is tested on fakes; Main wires flags, the API client and the
// Linux adapters. Every kernel read (each netlink dump, each iptables-save, opening the
// adapters) runs with a deadline, --step-timeout, on one worker in the caller's network
// namespace (deadline.go): a read that does not answer fails the run, naming the check,
// instead of hanging it, and the tools it left running are killed.
//
// Exit codes of `kubevs status`: 0 when the kernel matches the API (no drift), 1 when there
// is drift, 2 on any error (bad flags, unreadable configuration, API server or kernel
// unreachable).
package status

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Exit codes of `kubevs status`; scripts and probes rely on them, never change them.
const (
	ExitOK    = 0
	ExitDrift = 1
	ExitError = 2
)

// Want is what one Service asks of this node's kernel.
type Want struct {
	Service types.NamespacedName
	// Type is the Service's spec.type (ClusterIP, NodePort, LoadBalancer).
	Type string
	// State is desired.ComputeService's result for this node.
	State desired.Service
	// Skipped are the parts ComputeService had to skip (its errors, as text).
	Skipped []string
}

// KernelVS is one virtual server read from the kernel with its real servers (sorted).
type KernelVS struct {
	ipvs.VirtualServer
	RealServers []ipvs.RealServer
}

// Snapshot is what the kernel holds, read by ReadKernel.
type Snapshot struct {
	// VirtualServers are every IPVS virtual server, kubevs's or not, sorted by key.
	VirtualServers []KernelVS
	// Dummy is the name of the dummy link; DummyPresent whether it exists.
	Dummy        string
	DummyPresent bool
	// Addresses are the addresses bound to the dummy link, sorted.
	Addresses []netip.Addr
}

// Report is the result of Compare: what to print, and the drift that sets the exit code.
type Report struct {
	Node     string          `json:"node"`
	Dummy    string          `json:"dummy"`
	Services []ServiceReport `json:"services"`
	// Drift lists every difference between the API's wish and the kernel; empty when none.
	Drift []Drift `json:"drift"`
	// Warnings are parts of Services the proxier skips too (bad annotation, disabled family).
	Warnings []string `json:"warnings,omitempty"`
}

// ServiceReport is one Service and its virtual servers.
type ServiceReport struct {
	Namespace      string     `json:"namespace"`
	Name           string     `json:"name"`
	Type           string     `json:"type"`
	VirtualServers []VSReport `json:"virtualServers"`
}

// VSReport is one virtual server a Service wants: the kernel's settings when it is there
// (InKernel), else the wanted ones.
type VSReport struct {
	Protocol    string     `json:"protocol"`
	Address     netip.Addr `json:"address"`
	Port        uint16     `json:"port"`
	Scheduler   string     `json:"scheduler"`
	Persistent  bool       `json:"persistent,omitempty"`
	Timeout     uint32     `json:"timeout,omitempty"`
	InKernel    bool       `json:"inKernel"`
	RealServers []RSReport `json:"realServers"`
}

// RS states in a report.
const (
	RSOk          = "ok"           // wanted, in the kernel with the wanted weight
	RSMissing     = "missing"      // wanted, absent from the kernel
	RSWrongWeight = "wrong-weight" // wanted, in the kernel with another weight
	RSDraining    = "draining"     // not wanted, at weight 0 (graceful termination)
	RSExtra       = "extra"        // not wanted, still taking traffic
)

// RSReport is one real server of a virtual server: the kernel's weight and connection
// counts, or the wanted weight for a missing one.
type RSReport struct {
	Address       netip.Addr `json:"address"`
	Port          uint16     `json:"port"`
	Weight        int        `json:"weight"`
	ActiveConns   int        `json:"activeConns"`
	InactiveConns int        `json:"inactiveConns"`
	State         string     `json:"state"`
}

// DriftKind names one kind of difference.
type DriftKind string

// The kinds of drift Compare reports.
const (
	MissingVirtualServer DriftKind = "missing-virtual-server"
	WrongScheduler       DriftKind = "wrong-scheduler"
	WrongPersistence     DriftKind = "wrong-persistence"
	MissingRealServer    DriftKind = "missing-real-server"
	ExtraRealServer      DriftKind = "extra-real-server"
	WrongWeight          DriftKind = "wrong-weight"
	MissingDummy         DriftKind = "missing-dummy-link"
	MissingVIP           DriftKind = "missing-vip"
	OrphanVirtualServer  DriftKind = "orphan-virtual-server"
	OrphanVIP            DriftKind = "orphan-vip"
)

// Drift is one difference between what the API asks for and what the kernel holds.
type Drift struct {
	Kind DriftKind `json:"kind"`
	// Service is namespace/name; empty for orphans no Service asks for.
	Service string `json:"service,omitempty"`
	// VirtualServer is the virtual server's key (e.g. TCP:10.96.0.10:80), if it concerns one.
	VirtualServer string `json:"virtualServer,omitempty"`
	// Object is the real server or address concerned, if any.
	Object string `json:"object,omitempty"`
	// Want and Have describe the wanted and the kernel's values where they differ.
	Want string `json:"want,omitempty"`
	Have string `json:"have,omitempty"`
}

func (d Drift) String() string {
	s := string(d.Kind)
	for _, p := range []struct{ k, v string }{{"service", d.Service}, {"vs", d.VirtualServer}, {"object", d.Object}, {"want", d.Want}, {"have", d.Have}} {
		if p.v != "" {
			s += fmt.Sprintf(" %s=%s", p.k, p.v)
		}
	}
	return s
}
