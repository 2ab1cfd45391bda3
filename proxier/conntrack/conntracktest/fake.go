// Package conntracktest holds an in-memory conntrack.Interface: a list of flows that tests
// seed, and that the Delete calls remove with the kernel's matching rules, so a test can
// assert exactly which flows a sync deleted.
package conntracktest

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/conntrack"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Flow is one conntrack entry: the original direction and the reply direction. For a flow
// IPVS balanced (NAT), the original goes client -> VIP and the reply endpoint -> client.
type Flow struct {
	Proto              ipvs.Protocol
	OrigSrc, OrigDst   netip.AddrPort
	ReplySrc, ReplyDst netip.AddrPort
}

// NATFlow is the entry of a connection from client to vip that IPVS sent to endpoint.
func NATFlow(proto ipvs.Protocol, client, vip, endpoint netip.AddrPort) Flow {
	return Flow{Proto: proto, OrigSrc: client, OrigDst: vip, ReplySrc: endpoint, ReplyDst: client}
}

func (f Flow) String() string {
	return fmt.Sprintf("%s %s -> %s reply %s -> %s", f.Proto, f.OrigSrc, f.OrigDst, f.ReplySrc, f.ReplyDst)
}

func (f Flow) compare(o Flow) int {
	return cmp.Or(strings.Compare(string(f.Proto), string(o.Proto)),
		f.OrigSrc.Compare(o.OrigSrc), f.OrigDst.Compare(o.OrigDst),
		f.ReplySrc.Compare(o.ReplySrc), f.ReplyDst.Compare(o.ReplyDst))
}

// Fake is an in-memory conntrack table. It is safe for concurrent use.
//
// Ops records one line per call with its result: "delete-orig-dst UDP 10.96.0.10:53 = 2",
// "delete-reply-src UDP 10.244.0.5:0 = 1" (port 0: any), "delete-addr 10.244.0.5 = 3",
// "delete orig-dst UDP 10.96.0.10:53; addr 10.244.0.5 = 3" (Delete, its filters in order);
// a failed call ends in " (failed)" instead of a count. FailNext and SetHook fail a call of a
// verb, deleting nothing.
type Fake struct {
	*kfake.Log
	rec   *kfake.Recorder
	mu    sync.Mutex
	flows []Flow
}

var _ conntrack.Interface = (*Fake)(nil)

// The verbs of Ops, for FailNext, Calls and hooks.
const (
	OpDeleteByOrigDst  = "delete-orig-dst"
	OpDeleteByReplySrc = "delete-reply-src"
	OpDeleteByAddr     = "delete-addr"
	OpDelete           = "delete"
)

// NewFake returns a table holding flows.
func NewFake(flows ...Flow) *Fake {
	log, rec := kfake.New(kfake.MarkFailed)
	f := &Fake{Log: log, rec: rec}
	f.Add(flows...)
	return f
}

// Add puts flows into the table (addresses unmapped, as the kernel keeps IPv4 flows).
func (f *Fake) Add(flows ...Flow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range flows {
		for _, a := range []*netip.AddrPort{&fl.OrigSrc, &fl.OrigDst, &fl.ReplySrc, &fl.ReplyDst} {
			*a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		}
		if !slices.Contains(f.flows, fl) {
			f.flows = append(f.flows, fl)
		}
	}
}

// Flows returns the flows in the table, sorted.
func (f *Fake) Flows() []Flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.flows)
	slices.SortFunc(out, Flow.compare)
	return out
}

// Dump prints the flows, sorted, one per line.
func (f *Fake) Dump() string {
	var b strings.Builder
	for _, fl := range f.Flows() {
		b.WriteString(fl.String() + "\n")
	}
	return b.String()
}

func (f *Fake) delete(verb, what string, proto ipvs.Protocol, addr netip.Addr, match func(Flow) bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(verb, what, true)
	if err != nil {
		return 0, err
	}
	if proto != "" && proto != ipvs.TCP && proto != ipvs.UDP && proto != ipvs.SCTP {
		return 0, c.Done(fmt.Errorf("unknown protocol %q", proto))
	}
	if !addr.IsValid() {
		return 0, c.Done(fmt.Errorf("delete conntrack flows: invalid address"))
	}
	n := len(f.flows)
	f.flows = slices.DeleteFunc(f.flows, match)
	n -= len(f.flows)
	c.Note(fmt.Sprintf(" = %d", n))
	return n, nil
}

// Delete removes the flows one of filters matches, as one call (the kernel's one dump). An
// invalid filter fails the call, deleting nothing.
func (f *Fake) Delete(filters []conntrack.Filter) (int, error) {
	what := make([]string, len(filters))
	for i, fl := range filters {
		what[i] = fl.String()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(OpDelete, strings.Join(what, "; "), true)
	if err != nil {
		return 0, err
	}
	for _, fl := range filters {
		if err := fl.Validate(); err != nil {
			return 0, c.Done(fmt.Errorf("delete conntrack flows: %w", err))
		}
	}
	n := len(f.flows)
	f.flows = slices.DeleteFunc(f.flows, func(fl Flow) bool {
		for _, filter := range filters {
			if filter.Matches(conntrack.Flow(fl)) {
				return true
			}
		}
		return false
	})
	n -= len(f.flows)
	c.Note(fmt.Sprintf(" = %d", n))
	return n, nil
}

// DeleteByOrigDst removes flows whose original destination is addr:port over proto.
func (f *Fake) DeleteByOrigDst(proto ipvs.Protocol, addr netip.Addr, port uint16) (int, error) {
	dst := netip.AddrPortFrom(addr.Unmap(), port)
	return f.delete(OpDeleteByOrigDst, string(proto)+" "+dst.String(), proto, addr, func(fl Flow) bool {
		return fl.Proto == proto && fl.OrigDst == dst
	})
}

// DeleteByReplySrc removes flows whose reply comes from addr:port over proto (port 0: any).
func (f *Fake) DeleteByReplySrc(proto ipvs.Protocol, addr netip.Addr, port uint16) (int, error) {
	addr = addr.Unmap()
	what := string(proto) + " " + netip.AddrPortFrom(addr, port).String()
	return f.delete(OpDeleteByReplySrc, what, proto, addr, func(fl Flow) bool {
		return fl.Proto == proto && fl.ReplySrc.Addr() == addr && (port == 0 || fl.ReplySrc.Port() == port)
	})
}

// DeleteByAddr removes every flow with addr as a source or destination in either direction.
func (f *Fake) DeleteByAddr(addr netip.Addr) (int, error) {
	addr = addr.Unmap()
	return f.delete(OpDeleteByAddr, addr.String(), "", addr, func(fl Flow) bool {
		return fl.OrigSrc.Addr() == addr || fl.OrigDst.Addr() == addr ||
			fl.ReplySrc.Addr() == addr || fl.ReplyDst.Addr() == addr
	})
}
