package desired

import (
	"net/netip"
	"slices"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Slice is what ComputeService reads of one EndpointSlice, in the compact form the
// proxier's informer cache holds (SliceOf): the first address of each endpoint parsed, its
// conditions as the API defines their absence, and its node name and hints shared with
// every other endpoint that has the same. An EndpointSlice of 10 endpoints as decoded
// takes about 2.5 KB of heap, this about 0.7 KB. Slices are never modified once made.
type Slice struct {
	Namespace, Name string
	// Service is the Service the slice belongs to: its kubernetes.io/service-name label.
	Service     string
	AddressType discoveryv1.AddressType
	Ports       []SlicePort
	// Endpoints are those whose first address parses, in the slice's order.
	Endpoints []Endpoint
	// Invalid are the first addresses that do not parse, reported when the slice is used.
	Invalid []string
	// Others are the endpoints' valid addresses after their first, which Compute does not
	// use (the API calls them fungible) but the guard rails reserve (derive.APIServers).
	Others []netip.Addr
}

// SlicePort is one port of a Slice. A port given without a protocol is TCP.
type SlicePort struct {
	Name     string
	Protocol v1.Protocol
	Port     int32
	// HasPort is false for a port with no number.
	HasPort bool
}

// Endpoint is one endpoint of a Slice: its first address (clients may use the first
// address only, the API says) and conditions, ready and serving when not given, not
// terminating when not given.
type Endpoint struct {
	Addr                        netip.Addr
	NodeName                    string
	Hints                       *Hints
	Ready, Serving, Terminating bool
}

// Hints are an endpoint's topology hints: the zones and nodes it should serve.
type Hints struct {
	Zones, Nodes []string
}

// SliceOf returns the Slice of s.
func SliceOf(s *discoveryv1.EndpointSlice) *Slice {
	out := &Slice{
		Namespace:   s.Namespace,
		Name:        s.Name,
		Service:     s.Labels[discoveryv1.LabelServiceName],
		AddressType: s.AddressType,
	}
	if len(s.Ports) > 0 {
		out.Ports = make([]SlicePort, len(s.Ports))
		for i, p := range s.Ports {
			sp := SlicePort{Protocol: v1.ProtocolTCP}
			if p.Name != nil {
				sp.Name = *p.Name
			}
			if p.Protocol != nil {
				sp.Protocol = *p.Protocol
			}
			if p.Port != nil {
				sp.Port, sp.HasPort = *p.Port, true
			}
			out.Ports[i] = sp
		}
	}
	if len(s.Endpoints) > 0 {
		out.Endpoints = make([]Endpoint, 0, len(s.Endpoints))
	}
	for _, e := range s.Endpoints {
		if len(e.Addresses) == 0 {
			continue
		}
		for _, o := range e.Addresses[1:] {
			if a, err := netip.ParseAddr(o); err == nil {
				out.Others = append(out.Others, a.Unmap())
			}
		}
		a, err := netip.ParseAddr(e.Addresses[0])
		if err != nil {
			out.Invalid = append(out.Invalid, e.Addresses[0])
			continue
		}
		ep := Endpoint{
			Addr:        a.Unmap(),
			Ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
			Serving:     e.Conditions.Serving == nil || *e.Conditions.Serving,
			Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating,
			Hints:       shared.hints(e.Hints),
		}
		if e.NodeName != nil {
			ep.NodeName = shared.name(*e.NodeName)
		}
		out.Endpoints = append(out.Endpoints, ep)
	}
	return out
}

// SlicesOf returns the Slices of eps, in order; a nil slice stays nil.
func SlicesOf(eps ...*discoveryv1.EndpointSlice) []*Slice {
	out := make([]*Slice, len(eps))
	for i, s := range eps {
		if s != nil {
			out[i] = SliceOf(s)
		}
	}
	return out
}

// Equal reports whether a and b hold the same endpoints, ports and address type (and
// belong to the same Service): whether they compute the same.
func (a *Slice) Equal(b *Slice) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Namespace == b.Namespace && a.Name == b.Name && a.Service == b.Service &&
		a.AddressType == b.AddressType && slices.Equal(a.Ports, b.Ports) &&
		slices.EqualFunc(a.Endpoints, b.Endpoints, Endpoint.equal) && slices.Equal(a.Invalid, b.Invalid) &&
		slices.Equal(a.Others, b.Others)
}

func (e Endpoint) equal(o Endpoint) bool {
	return e.Addr == o.Addr && e.NodeName == o.NodeName && e.Ready == o.Ready && e.Serving == o.Serving &&
		e.Terminating == o.Terminating && e.Hints.equal(o.Hints)
}

func (h *Hints) equal(o *Hints) bool {
	if h == o {
		return true
	}
	if h == nil || o == nil {
		return false
	}
	return slices.Equal(h.Zones, o.Zones) && slices.Equal(h.Nodes, o.Nodes)
}

// The node names and hints repeat across a cluster's endpoints: every Slice points to one
// shared value each, where the decoder gave every endpoint its own (at 10,000 Services x 10
// endpoints, 100,000 copies of a few dozen values). Shared values are never written to; the
// tables grow with the cluster's nodes and zone sets, never with its endpoints.
var shared = &interner{names: map[string]string{}, hintSets: map[string]*Hints{}}

// interner hands out one copy per distinct node name and per distinct set of hints. It is
// safe for concurrent use (the informers convert in their own goroutines).
type interner struct {
	mu       sync.Mutex
	names    map[string]string
	hintSets map[string]*Hints
}

// name returns the shared copy of n.
func (in *interner) name(n string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	p, ok := in.names[n]
	if !ok {
		p = strings.Clone(n)
		in.names[p] = p
	}
	return p
}

// hints returns the shared Hints of h (nil for nil or no hint).
func (in *interner) hints(h *discoveryv1.EndpointHints) *Hints {
	if h == nil || len(h.ForZones)+len(h.ForNodes) == 0 {
		return nil
	}
	var b strings.Builder
	for _, z := range h.ForZones {
		b.WriteByte('z')
		b.WriteString(z.Name)
		b.WriteByte(0)
	}
	for _, n := range h.ForNodes {
		b.WriteByte('n')
		b.WriteString(n.Name)
		b.WriteByte(0)
	}
	key := b.String()
	in.mu.Lock()
	defer in.mu.Unlock()
	p, ok := in.hintSets[key]
	if !ok {
		p = &Hints{}
		for _, z := range h.ForZones {
			p.Zones = append(p.Zones, strings.Clone(z.Name))
		}
		for _, n := range h.ForNodes {
			p.Nodes = append(p.Nodes, strings.Clone(n.Name))
		}
		in.hintSets[key] = p
	}
	return p
}
