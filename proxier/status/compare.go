package status

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// CompareOptions tune Compare.
type CompareOptions struct {
	// Node names the node in the report.
	Node string
	// ExcludeCIDRs are the proxier's ipvs.excludeCIDRs: a virtual server inside them that no
	// Service wants is left alone by the proxier, so it is no drift.
	ExcludeCIDRs []netip.Prefix
}

// Compare reports, for each wanted Service, the kernel's virtual and real servers, and the
// drift between wants and snap. It is pure and deterministic: Services in the order of
// wants, virtual servers by key, real servers by address and port, orphans last.
//
// What counts as drift follows what the proxier converges to: a missing or differently
// configured virtual server, a missing real server or one with another weight, a real
// server no endpoint backs that still has weight (one at weight 0 is draining, except for
// UDP which the proxier deletes at once), a missing VIP or dummy link, and virtual servers
// or addresses on the dummy link that no Service asks for (ownership as the proxier's:
// the address is bound to the dummy link and not in ExcludeCIDRs). Virtual servers on
// other addresses are not kubevs's and are ignored.
func Compare(o CompareOptions, wants []Want, snap Snapshot) Report {
	r := Report{Node: o.Node, Dummy: snap.Dummy, Services: []ServiceReport{}, Drift: []Drift{}}
	kernel := make(map[ipvs.Key]KernelVS, len(snap.VirtualServers))
	for _, v := range snap.VirtualServers {
		kernel[v.Key] = v
	}
	bound := make(map[netip.Addr]bool, len(snap.Addresses))
	for _, a := range snap.Addresses {
		bound[a.Unmap()] = true
	}
	wantedVS := map[ipvs.Key]string{}
	wantedVIP := map[netip.Addr]bool{}
	for _, w := range wants {
		name := w.Service.String()
		sr := ServiceReport{Namespace: w.Service.Namespace, Name: w.Service.Name, Type: w.Type, VirtualServers: []VSReport{}}
		r.Warnings = append(r.Warnings, w.Skipped...)
		for _, vs := range w.State.VirtualServers {
			if other, dup := wantedVS[vs.Key]; dup {
				r.Warnings = append(r.Warnings, fmt.Sprintf("service %s: virtual server %s is also wanted by %s", name, vs.Key, other))
				continue
			}
			wantedVS[vs.Key] = name
			kv, ok := kernel[vs.Key]
			vr, drift := compareVS(name, vs, kv, ok)
			sr.VirtualServers = append(sr.VirtualServers, vr)
			r.Drift = append(r.Drift, drift...)
		}
		for _, a := range w.State.VIPs {
			wantedVIP[a] = true
			if !snap.DummyPresent {
				continue // reported once below
			}
			if !bound[a] {
				r.Drift = append(r.Drift, Drift{Kind: MissingVIP, Service: name, Object: a.String(),
					Want: "bound to " + snap.Dummy, Have: "not bound"})
			}
		}
		r.Services = append(r.Services, sr)
	}
	if !snap.DummyPresent && len(wantedVIP) > 0 {
		r.Drift = append(r.Drift, Drift{Kind: MissingDummy, Object: snap.Dummy,
			Want: fmt.Sprintf("%d addresses bound", len(wantedVIP)), Have: "no such link"})
	}
	for _, v := range snap.VirtualServers {
		if _, ok := wantedVS[v.Key]; ok || !bound[v.Address.Unmap()] || excluded(v.Address, o.ExcludeCIDRs) {
			continue
		}
		r.Drift = append(r.Drift, Drift{Kind: OrphanVirtualServer, VirtualServer: v.Key.String(),
			Have: fmt.Sprintf("%s, %d real servers", settings(v.VirtualServer), len(v.RealServers))})
	}
	for _, a := range snap.Addresses {
		if !wantedVIP[a.Unmap()] {
			r.Drift = append(r.Drift, Drift{Kind: OrphanVIP, Object: a.String(), Have: "bound to " + snap.Dummy})
		}
	}
	return r
}

// compareVS compares one wanted virtual server with the kernel's (ok: it exists).
func compareVS(svc string, want desired.VirtualServer, have KernelVS, ok bool) (VSReport, []Drift) {
	key := want.Key.String()
	if !ok {
		vr := vsReport(want.VirtualServer, false)
		for _, rs := range want.RealServers {
			vr.RealServers = append(vr.RealServers, rsReport(rs.IPVS(), RSMissing))
		}
		return vr, []Drift{{Kind: MissingVirtualServer, Service: svc, VirtualServer: key,
			Want: fmt.Sprintf("%s, %d real servers", settings(want.VirtualServer), len(want.RealServers))}}
	}
	var drift []Drift
	vr := vsReport(have.VirtualServer, true)
	if have.Scheduler != want.Scheduler {
		drift = append(drift, Drift{Kind: WrongScheduler, Service: svc, VirtualServer: key, Want: want.Scheduler, Have: have.Scheduler})
	}
	if have.Persistent != want.Persistent || (want.Persistent && have.Timeout != want.Timeout) {
		drift = append(drift, Drift{Kind: WrongPersistence, Service: svc, VirtualServer: key,
			Want: persistence(want.VirtualServer), Have: persistence(have.VirtualServer)})
	}
	inKernel := make(map[netip.AddrPort]ipvs.RealServer, len(have.RealServers))
	for _, rs := range have.RealServers {
		inKernel[rs.AddrPort()] = rs
	}
	wanted := make(map[netip.AddrPort]bool, len(want.RealServers))
	for _, w := range want.RealServers {
		ap := w.AddrPort()
		wanted[ap] = true
		h, ok := inKernel[ap]
		switch {
		case !ok:
			vr.RealServers = append(vr.RealServers, rsReport(w.IPVS(), RSMissing))
			drift = append(drift, Drift{Kind: MissingRealServer, Service: svc, VirtualServer: key, Object: ap.String(),
				Want: fmt.Sprintf("weight %d", w.Weight()), Have: "absent"})
		case h.Weight != w.Weight():
			vr.RealServers = append(vr.RealServers, rsReport(h, RSWrongWeight))
			drift = append(drift, Drift{Kind: WrongWeight, Service: svc, VirtualServer: key, Object: ap.String(),
				Want: fmt.Sprintf("weight %d", w.Weight()), Have: fmt.Sprintf("weight %d", h.Weight)})
		default:
			vr.RealServers = append(vr.RealServers, rsReport(h, RSOk))
		}
	}
	for _, h := range have.RealServers {
		ap := h.AddrPort()
		if wanted[ap] {
			continue
		}
		if h.Weight == 0 && want.Protocol != ipvs.UDP {
			vr.RealServers = append(vr.RealServers, rsReport(h, RSDraining))
			continue
		}
		vr.RealServers = append(vr.RealServers, rsReport(h, RSExtra))
		drift = append(drift, Drift{Kind: ExtraRealServer, Service: svc, VirtualServer: key, Object: ap.String(),
			Want: "absent", Have: fmt.Sprintf("weight %d", h.Weight)})
	}
	slices.SortStableFunc(vr.RealServers, func(a, b RSReport) int {
		return netip.AddrPortFrom(a.Address, a.Port).Compare(netip.AddrPortFrom(b.Address, b.Port))
	})
	return vr, drift
}

func vsReport(v ipvs.VirtualServer, inKernel bool) VSReport {
	vr := VSReport{Protocol: string(v.Protocol), Address: v.Address, Port: v.Port, Scheduler: v.Scheduler,
		Persistent: v.Persistent, InKernel: inKernel, RealServers: []RSReport{}}
	if v.Persistent {
		vr.Timeout = v.Timeout
	}
	return vr
}

func rsReport(rs ipvs.RealServer, state string) RSReport {
	return RSReport{Address: rs.Address, Port: rs.Port, Weight: int(rs.Weight),
		ActiveConns: int(rs.ActiveConns), InactiveConns: int(rs.InactiveConns), State: state}
}

// settings prints a virtual server's scheduler and persistence, e.g. "rr persistent 10800s".
func settings(v ipvs.VirtualServer) string {
	if !v.Persistent {
		return v.Scheduler
	}
	return v.Scheduler + " " + persistence(v)
}

func persistence(v ipvs.VirtualServer) string {
	if !v.Persistent {
		return "not persistent"
	}
	return fmt.Sprintf("persistent %ds", v.Timeout)
}

func excluded(a netip.Addr, cidrs []netip.Prefix) bool {
	return slices.ContainsFunc(cidrs, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
}

// keyString is used by the table renderer: "TCP  10.96.0.10:80".
func keyString(protocol string, a netip.Addr, port uint16) string {
	return fmt.Sprintf("%-4s %s", strings.ToUpper(protocol), netip.AddrPortFrom(a, port))
}
