package desired

import (
	"errors"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// errZone is why an endpoint address with a zone is invalid (SliceOf).
var errZone = errors.New("an IPVS real server's address takes no zone")

// endpoint is one backend of one Service port, with its conditions and topology hints.
type endpoint struct {
	addr                        netip.Addr
	port                        uint16
	nodeName                    string
	ready, serving, terminating bool
	zones, nodes                []string // hints.forZones, hints.forNodes (shared: read only)
}

func (e endpoint) local(node Node, pods LocalPods) bool {
	if node.Name != "" && e.nodeName == node.Name {
		return true
	}
	return pods != nil && pods.Has(e.addr)
}

// candidates returns every endpoint of service port sp in family fam, sorted by address and
// port, one per address and port (a ready copy wins over one that is not).
//
// Slice ports are matched to sp by name (and protocol), as the EndpointSlice API defines.
// Per the API, a nil ready or serving condition means true and a nil terminating means false.
func candidates(fam ipset.Family, sp ServicePort, eps []*Slice, errs *[]error, svc string) []endpoint {
	want := discoveryv1.AddressTypeIPv4
	if fam == ipset.IPv6 {
		want = discoveryv1.AddressTypeIPv6
	}
	n := 0
	for _, s := range eps {
		if s != nil && s.AddressType == want {
			n += len(s.Endpoints)
		}
	}
	out := make([]endpoint, 0, n)
	for _, s := range eps {
		if s == nil || s.AddressType != want {
			continue
		}
		port, ok := slicePort(s, sp)
		if !ok {
			continue
		}
		for _, a := range s.Invalid {
			_, err := netip.ParseAddr(a)
			if err == nil {
				err = errZone
			}
			*errs = append(*errs, skipped(ReasonInvalidAddress, "service %s: endpointslice %s: parse address %q: %w", svc, s.Name, a, err))
		}
		for i := range s.Endpoints {
			e := &s.Endpoints[i]
			ep := endpoint{
				addr:        e.Addr(),
				port:        port,
				nodeName:    e.NodeName(),
				ready:       e.Ready(),
				serving:     e.Serving(),
				terminating: e.Terminating(),
			}
			if h := e.Hints(); h != nil {
				ep.zones, ep.nodes = h.Zones, h.Nodes
			}
			out = append(out, ep)
		}
	}
	slices.SortFunc(out, func(a, b endpoint) int {
		if c := compareEndpoints(a, b); c != 0 {
			return c
		}
		switch {
		case a.ready == b.ready:
			return 0
		case a.ready:
			return -1
		}
		return 1
	})
	return slices.CompactFunc(out, func(a, b endpoint) bool { return compareEndpoints(a, b) == 0 })
}

func compareEndpoints(a, b endpoint) int {
	if c := a.addr.Compare(b.addr); c != 0 {
		return c
	}
	return int(a.port) - int(b.port)
}

// pick splits the candidates of one Service port into the backends of the two traffic
// policies, as kube-proxy does:
//
//   - cluster: the ready endpoints, narrowed by topology hints when they apply (see
//     topology); when none is ready, the serving and terminating ones (so connections keep
//     working while a rollout replaces the last pods).
//   - local: the ready endpoints on this node; when there is none, the serving and
//     terminating ones on this node.
//
// The ready local endpoints' addresses are added to *readyLocal (made on first use). When
// every candidate is ready (the usual case) cluster shares cands' array.
func pick(cands []endpoint, node Node, pods LocalPods, readyLocal *map[netip.Addr]struct{}) (cluster, local []endpoint) {
	allReady := true
	for i := range cands {
		allReady = allReady && cands[i].ready
	}
	var ready, fallback, fallbackLocal []endpoint
	if allReady {
		ready = cands
	}
	for _, e := range cands {
		isLocal := e.local(node, pods)
		switch {
		case e.ready:
			if !allReady {
				ready = append(ready, e)
			}
			if isLocal {
				local = append(local, e)
				if *readyLocal == nil {
					*readyLocal = map[netip.Addr]struct{}{}
				}
				(*readyLocal)[e.addr] = struct{}{}
			}
		case e.serving && e.terminating:
			fallback = append(fallback, e)
			if isLocal {
				fallbackLocal = append(fallbackLocal, e)
			}
		}
	}
	cluster = topology(ready, node)
	if len(cluster) == 0 {
		cluster = fallback
	}
	if len(local) == 0 {
		local = fallbackLocal
	}
	return cluster, local
}

// topology narrows the ready endpoints by their hints, as kube-proxy does: hints.forNodes
// (trafficDistribution PreferSameNode) when every endpoint has them and one names this
// node, else hints.forZones (trafficDistribution PreferClose, or the topology-mode
// annotation; the EndpointSlice controller sets the hints) when every endpoint has them and
// one names this node's zone. Otherwise all ready endpoints are used: one endpoint without
// hints means the hints are not to be trusted.
func topology(ready []endpoint, node Node) []endpoint {
	if len(ready) == 0 {
		return ready
	}
	filter := func(hints func(endpoint) []string, want string) ([]endpoint, bool) {
		if want == "" {
			return nil, false
		}
		found := false
		for _, e := range ready {
			h := hints(e)
			if len(h) == 0 {
				return nil, false
			}
			found = found || slices.Contains(h, want)
		}
		if !found {
			return nil, false
		}
		var out []endpoint
		for _, e := range ready {
			if slices.Contains(hints(e), want) {
				out = append(out, e)
			}
		}
		return out, true
	}
	if out, ok := filter(func(e endpoint) []string { return e.nodes }, node.Name); ok {
		return out
	}
	if out, ok := filter(func(e endpoint) []string { return e.zones }, node.Zone); ok {
		return out
	}
	return ready
}

// slicePort finds the port of slice s that serves sp: same name and protocol.
func slicePort(s *Slice, sp ServicePort) (uint16, bool) {
	spProto := sp.Protocol
	if spProto == "" {
		spProto = v1.ProtocolTCP
	}
	for _, p := range s.Ports {
		if p.Name != sp.Name || p.Protocol != spProto || !p.HasPort {
			continue
		}
		if p.Port <= 0 || p.Port > 65535 {
			return 0, false
		}
		return uint16(p.Port), true
	}
	return 0, false
}
