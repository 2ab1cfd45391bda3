package desired

import (
	"fmt"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// endpoint is one usable backend of one Service port.
type endpoint struct {
	addr     netip.Addr
	port     uint16
	nodeName string
}

func (e endpoint) local(node Node, pods LocalPods) bool {
	if node.Name != "" && e.nodeName == node.Name {
		return true
	}
	return pods != nil && pods.Has(e.addr)
}

// endpoints returns the backends of service port sp in family fam, sorted and unique:
// the ready endpoints, or, when none is ready, the serving and terminating ones (so
// connections keep working while a rollout replaces the last pods).
//
// Slice ports are matched to sp by name (and protocol), as the EndpointSlice API defines.
// Per the API, a nil ready or serving condition means true and a nil terminating means false.
func endpoints(fam ipset.Family, sp v1.ServicePort, eps []*discoveryv1.EndpointSlice, errs *[]error, svc string) []endpoint {
	want := discoveryv1.AddressTypeIPv4
	if fam == ipset.IPv6 {
		want = discoveryv1.AddressTypeIPv6
	}
	n := 0
	for _, s := range eps {
		if s != nil {
			n += len(s.Endpoints)
		}
	}
	ready := make([]endpoint, 0, n)
	var fallback []endpoint
	for _, s := range eps {
		if s == nil || s.AddressType != want {
			continue
		}
		port, ok := slicePort(s, sp)
		if !ok {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(e.Addresses[0])
			if err != nil {
				*errs = append(*errs, fmt.Errorf("service %s: endpointslice %s: parse address %q: %w", svc, s.Name, e.Addresses[0], err))
				continue
			}
			ep := endpoint{addr: a.Unmap(), port: port}
			if e.NodeName != nil {
				ep.nodeName = *e.NodeName
			}
			isReady := e.Conditions.Ready == nil || *e.Conditions.Ready
			serving := e.Conditions.Serving == nil || *e.Conditions.Serving
			terminating := e.Conditions.Terminating != nil && *e.Conditions.Terminating
			switch {
			case isReady:
				ready = append(ready, ep)
			case serving && terminating:
				fallback = append(fallback, ep)
			}
		}
	}
	out := ready
	if len(out) == 0 {
		out = fallback
	}
	cmp := func(a, b endpoint) int {
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		return int(a.port) - int(b.port)
	}
	slices.SortFunc(out, cmp)
	return slices.CompactFunc(out, func(a, b endpoint) bool { return cmp(a, b) == 0 })
}

// slicePort finds the port of slice s that serves sp: same name and protocol.
func slicePort(s *discoveryv1.EndpointSlice, sp v1.ServicePort) (uint16, bool) {
	for _, p := range s.Ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		proto := v1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		spProto := sp.Protocol
		if spProto == "" {
			spProto = v1.ProtocolTCP
		}
		if name != sp.Name || proto != spProto || p.Port == nil {
			continue
		}
		if *p.Port <= 0 || *p.Port > 65535 {
			return 0, false
		}
		return uint16(*p.Port), true
	}
	return 0, false
}
