// Package ipvstest holds an in-memory IPVS table with the kernel's semantics, for tests of
// code that programs IPVS through ipvs.Interface.
//
// The fake answers like the kernel does: a duplicate add fails with ipvs.ErrExist; an update,
// delete or listing of something absent fails with ipvs.ErrNotFound; deleting a virtual
// server drops its real servers. It also records every write it is asked to do (Ops), lets a
// test make the next call of an operation fail (FailNext, SetHook), and prints its content as
// stable text (Dump) for golden tests.
package ipvstest

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Operation names, used in Ops, FailNext and hooks.
const (
	OpVirtualServers      = "list-vs"
	OpAddVirtualServer    = "add-vs"
	OpUpdateVirtualServer = "update-vs"
	OpDeleteVirtualServer = "delete-vs"
	OpRealServers         = "list-rs"
	OpRealServerTable     = "list-rs-table"
	OpAddRealServer       = "add-rs"
	OpUpdateRealServer    = "update-rs"
	OpDeleteRealServer    = "delete-rs"
	OpSetTimeouts         = "set-timeouts"
)

// Hook is called before every operation with its name and a description of its target (the
// same text Ops records, without the name). A non-nil error fails the call without changing
// the table.
type Hook = kfake.Hook

type service struct {
	vs    ipvs.VirtualServer
	dest  map[netip.AddrPort]ipvs.RealServer
	stats ipvs.Stats
}

// Fake is an in-memory ipvs.Interface. The zero value is not usable; call NewFake. It is safe
// for concurrent use.
//
// Its Log records the writes issued since the last ResetOps, in order, one line each, for
// example "add-rs TCP:10.96.0.1:80 10.244.0.2:8080 weight 1"; a write that failed ends in
// ": <error>". Reads are not recorded there; Calls counts them. FailNext and SetHook (asked
// when no FailNext failure is queued) fail a call without changing the table.
type Fake struct {
	*kfake.Log
	rec      *kfake.Recorder
	mu       sync.Mutex
	services map[ipvs.Key]*service
	timeouts ipvs.Timeouts
}

var (
	_ ipvs.Interface       = (*Fake)(nil)
	_ ipvs.StatsReader     = (*Fake)(nil)
	_ ipvs.TableReader     = (*Fake)(nil)
	_ ipvs.RealServerAdder = (*Fake)(nil)
)

// SetStats sets the counters of the virtual server k, as traffic would (ipvs.ErrNotFound if
// it is absent). A virtual server deleted and added again starts from zero, as in the kernel.
func (f *Fake) SetStats(k ipvs.Key, st ipvs.Stats) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[k]
	if !ok {
		return fmt.Errorf("virtual server %s: %w", k, ipvs.ErrNotFound)
	}
	s.stats = st
	return nil
}

// VirtualServerStats returns the counters of every virtual server.
func (f *Fake) VirtualServerStats() (map[ipvs.Key]ipvs.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[ipvs.Key]ipvs.Stats, len(f.services))
	for k, s := range f.services {
		out[k] = s.stats
	}
	return out, nil
}

// NewFake returns an empty table.
func NewFake() *Fake {
	log, rec := kfake.New(kfake.MarkError)
	return &Fake{Log: log, rec: rec, services: map[ipvs.Key]*service{}}
}

// SetConns sets the connection counters of a real server, as traffic would; it fails with
// ipvs.ErrNotFound if the real server is absent. It is not recorded as an operation.
func (f *Fake) SetConns(k ipvs.Key, dest netip.AddrPort, active, inactive int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[k]
	if !ok {
		return fmt.Errorf("virtual server %s: %w", k, ipvs.ErrNotFound)
	}
	rs, ok := s.dest[dest]
	if !ok {
		return fmt.Errorf("real server %s of %s: %w", dest, k, ipvs.ErrNotFound)
	}
	rs.ActiveConns, rs.InactiveConns = uint32(active), uint32(inactive)
	s.dest[dest] = rs
	return nil
}

// Dump prints the table as stable text: virtual servers sorted by address, protocol and
// port, each followed by its real servers sorted by address and port. Connection counters
// are printed only when non-zero.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, k := range sortedKeys(f.services) {
		s := f.services[k]
		fmt.Fprintf(&b, "%s\n", s.vs)
		for _, rs := range sortedDests(s.dest) {
			fmt.Fprintf(&b, "  -> %s", rs)
			if rs.ActiveConns != 0 || rs.InactiveConns != 0 {
				fmt.Fprintf(&b, " active %d inactive %d", rs.ActiveConns, rs.InactiveConns)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// VirtualServers lists every virtual server, sorted.
func (f *Fake) VirtualServers() ([]ipvs.VirtualServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.rec.Begin(OpVirtualServers, "", false); err != nil {
		return nil, err
	}
	out := make([]ipvs.VirtualServer, 0, len(f.services))
	for _, k := range sortedKeys(f.services) {
		out = append(out, f.services[k].vs)
	}
	return out, nil
}

// AddVirtualServer adds vs; ipvs.ErrExist if its key is taken.
func (f *Fake) AddVirtualServer(vs ipvs.VirtualServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(OpAddVirtualServer, vs.String(), true)
	if err != nil {
		return err
	}
	if err := validateVS(vs); err != nil {
		return c.Done(err)
	}
	if _, ok := f.services[vs.Key]; ok {
		return c.Done(fmt.Errorf("add virtual server %s: %w", vs.Key, ipvs.ErrExist))
	}
	f.services[vs.Key] = &service{vs: normalize(vs), dest: map[netip.AddrPort]ipvs.RealServer{}}
	return nil
}

// UpdateVirtualServer changes scheduler and persistence; ipvs.ErrNotFound if absent.
func (f *Fake) UpdateVirtualServer(vs ipvs.VirtualServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(OpUpdateVirtualServer, vs.String(), true)
	if err != nil {
		return err
	}
	if err := validateVS(vs); err != nil {
		return c.Done(err)
	}
	s, ok := f.services[vs.Key]
	if !ok {
		return c.Done(fmt.Errorf("update virtual server %s: %w", vs.Key, ipvs.ErrNotFound))
	}
	s.vs = normalize(vs)
	return nil
}

// DeleteVirtualServer removes a virtual server and its real servers; ipvs.ErrNotFound if absent.
func (f *Fake) DeleteVirtualServer(k ipvs.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(OpDeleteVirtualServer, k.String(), true)
	if err != nil {
		return err
	}
	if _, ok := f.services[k]; !ok {
		return c.Done(fmt.Errorf("delete virtual server %s: %w", k, ipvs.ErrNotFound))
	}
	delete(f.services, k)
	return nil
}

// RealServers lists the real servers of k, sorted; ipvs.ErrNotFound if k is absent.
func (f *Fake) RealServers(k ipvs.Key) ([]ipvs.RealServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.rec.Begin(OpRealServers, k.String(), false); err != nil {
		return nil, err
	}
	s, ok := f.services[k]
	if !ok {
		return nil, fmt.Errorf("list real servers of %s: %w", k, ipvs.ErrNotFound)
	}
	return sortedDests(s.dest), nil
}

// RealServerTable lists the real servers of every virtual server at once, as the kernel's
// /proc/net/ip_vs does; its reads are counted as OpRealServerTable.
func (f *Fake) RealServerTable() (map[ipvs.Key][]ipvs.RealServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.rec.Begin(OpRealServerTable, "", false); err != nil {
		return nil, err
	}
	out := make(map[ipvs.Key][]ipvs.RealServer, len(f.services))
	for k, s := range f.services {
		out[k] = sortedDests(s.dest)
	}
	return out, nil
}

// AddRealServers adds each of rss to k, one AddRealServer each (recorded and failed one by
// one, as the kernel acknowledges each message of a batch).
func (f *Fake) AddRealServers(k ipvs.Key, rss []ipvs.RealServer) []error {
	errs := make([]error, len(rss))
	for i, rs := range rss {
		errs[i] = f.AddRealServer(k, rs)
	}
	return errs
}

// AddRealServer adds rs to k; ipvs.ErrNotFound if k is absent, ipvs.ErrExist if rs is there.
func (f *Fake) AddRealServer(k ipvs.Key, rs ipvs.RealServer) error {
	return f.writeDest(OpAddRealServer, k, rs, func(s *service, exists bool) error {
		if exists {
			return ipvs.ErrExist
		}
		rs.ActiveConns, rs.InactiveConns = 0, 0
		s.dest[rs.AddrPort()] = rs
		return nil
	})
}

// UpdateRealServer changes the weight of rs; ipvs.ErrNotFound if k or rs is absent.
func (f *Fake) UpdateRealServer(k ipvs.Key, rs ipvs.RealServer) error {
	return f.writeDest(OpUpdateRealServer, k, rs, func(s *service, exists bool) error {
		if !exists {
			return ipvs.ErrNotFound
		}
		cur := s.dest[rs.AddrPort()]
		cur.Weight = rs.Weight
		s.dest[rs.AddrPort()] = cur
		return nil
	})
}

// DeleteRealServer removes rs from k; ipvs.ErrNotFound if k or rs is absent.
func (f *Fake) DeleteRealServer(k ipvs.Key, rs ipvs.RealServer) error {
	return f.writeDest(OpDeleteRealServer, k, rs, func(s *service, exists bool) error {
		if !exists {
			return ipvs.ErrNotFound
		}
		delete(s.dest, rs.AddrPort())
		return nil
	})
}

// writeDest runs the checks every real-server write shares, then apply.
func (f *Fake) writeDest(op string, k ipvs.Key, rs ipvs.RealServer, apply func(*service, bool) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(op, destTarget(op, k, rs), true)
	if err != nil {
		return err
	}
	verb := map[string]string{OpAddRealServer: "add", OpUpdateRealServer: "update", OpDeleteRealServer: "delete"}[op]
	s, ok := f.services[k]
	if !ok {
		return c.Done(fmt.Errorf("%s real server %s of %s: virtual server %w", verb, rs.AddrPort(), k, ipvs.ErrNotFound))
	}
	if op != OpDeleteRealServer {
		if err := validateRS(k, rs); err != nil {
			return c.Done(err)
		}
	}
	_, exists := s.dest[rs.AddrPort()]
	if err := apply(s, exists); err != nil {
		return c.Done(fmt.Errorf("%s real server %s of %s: %w", verb, rs.AddrPort(), k, err))
	}
	return nil
}

// ErrInvalid is returned for what the kernel refuses with EINVAL (or an unknown scheduler).
var ErrInvalid = errors.New("invalid argument")

// normalize drops the timeout of a virtual server without persistence, as the Linux adapter
// does when it reads the kernel, so that listings compare equal to what was written.
func normalize(vs ipvs.VirtualServer) ipvs.VirtualServer {
	if !vs.Persistent {
		vs.Timeout = 0
	}
	return vs
}

func validateVS(vs ipvs.VirtualServer) error {
	switch {
	case !vs.Address.IsValid():
		return fmt.Errorf("virtual server %s: no address: %w", vs.Key, ErrInvalid)
	case vs.Protocol != ipvs.TCP && vs.Protocol != ipvs.UDP && vs.Protocol != ipvs.SCTP:
		return fmt.Errorf("virtual server %s: protocol %q: %w", vs.Key, vs.Protocol, ErrInvalid)
	case vs.Scheduler == "":
		return fmt.Errorf("virtual server %s: no scheduler: %w", vs.Key, ErrInvalid)
	}
	return nil
}

func validateRS(k ipvs.Key, rs ipvs.RealServer) error {
	switch {
	case !rs.Address.IsValid():
		return fmt.Errorf("real server of %s: no address: %w", k, ErrInvalid)
	case rs.Address.Unmap().Is4() != k.Address.Unmap().Is4():
		return fmt.Errorf("real server %s of %s: mixed address families need tunnelling, not NAT: %w", rs.AddrPort(), k, ErrInvalid)
	case rs.Weight < 0:
		return fmt.Errorf("real server %s of %s: negative weight %d: %w", rs.AddrPort(), k, rs.Weight, ErrInvalid)
	}
	return nil
}

// CompareKeys orders keys by address, then protocol, then port: the order of Dump and of
// the fake's listings.
func CompareKeys(a, b ipvs.Key) int {
	return cmp.Or(a.Address.Compare(b.Address), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

func sortedKeys(m map[ipvs.Key]*service) []ipvs.Key {
	keys := make([]ipvs.Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, CompareKeys)
	return keys
}

func sortedDests(m map[netip.AddrPort]ipvs.RealServer) []ipvs.RealServer {
	out := make([]ipvs.RealServer, 0, len(m))
	for _, rs := range m {
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b ipvs.RealServer) int { return a.AddrPort().Compare(b.AddrPort()) })
	return out
}

// SetTimeouts sets the non-zero timeouts of t, as the kernel does; Timeouts reads them.
func (f *Fake) SetTimeouts(t ipvs.Timeouts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.rec.Begin(OpSetTimeouts, t.String(), true)
	if err != nil {
		return err
	}
	for _, p := range []struct {
		dst *time.Duration
		v   time.Duration
	}{{&f.timeouts.TCP, t.TCP}, {&f.timeouts.TCPFin, t.TCPFin}, {&f.timeouts.UDP, t.UDP}} {
		if p.v < 0 {
			return c.Done(fmt.Errorf("set timeouts %s: negative timeout", t))
		}
		if p.v != 0 {
			*p.dst = p.v
		}
	}
	return c.Done(nil)
}

// Timeouts returns the timeouts set so far (zero: never set, the kernel's defaults).
func (f *Fake) Timeouts() ipvs.Timeouts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeouts
}
