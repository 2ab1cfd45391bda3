package desired

import (
	"encoding/json"
	"fmt"
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
// terminating when not given. It takes 24 bytes: the address in 16, and one pointer to its
// placement, which holds its node name, hints, family and conditions and is shared
// (interned) with every endpoint that has the same. Endpoints are most of the bytes of a
// cache of many Services (at 10 each, 56 bytes an endpoint in the plain form took 576 of a
// slice's 1,045).
type Endpoint struct {
	addr  [16]byte // IPv4 in its mapped form
	where *placement
}

// placement is an endpoint's node name, hints, family and conditions, shared.
type placement struct {
	node  string
	hints *Hints
	flags uint8
}

const (
	epIs4 uint8 = 1 << iota
	epReady
	epServing
	epTerminating
)

// NewEndpoint returns the Endpoint of addr (unmapped; it must carry no zone) on node with
// hints and conditions.
func NewEndpoint(addr netip.Addr, node string, hints *Hints, ready, serving, terminating bool) Endpoint {
	addr = addr.Unmap()
	var flags uint8
	for _, f := range []struct {
		on  bool
		bit uint8
	}{{addr.Is4(), epIs4}, {ready, epReady}, {serving, epServing}, {terminating, epTerminating}} {
		if f.on {
			flags |= f.bit
		}
	}
	return Endpoint{addr: addr.As16(), where: shared.placement(node, hints, flags)}
}

func (e Endpoint) flags() uint8 {
	if e.where == nil {
		return 0
	}
	return e.where.flags
}

// Addr is the endpoint's address.
func (e Endpoint) Addr() netip.Addr {
	a := netip.AddrFrom16(e.addr)
	if e.flags()&epIs4 != 0 {
		return a.Unmap()
	}
	return a
}

// NodeName is the endpoint's node, "" when not given.
func (e Endpoint) NodeName() string {
	if e.where == nil {
		return ""
	}
	return e.where.node
}

// Hints are the endpoint's topology hints, nil when none.
func (e Endpoint) Hints() *Hints {
	if e.where == nil {
		return nil
	}
	return e.where.hints
}

// Ready, Serving and Terminating are the endpoint's conditions.
func (e Endpoint) Ready() bool       { return e.flags()&epReady != 0 }
func (e Endpoint) Serving() bool     { return e.flags()&epServing != 0 }
func (e Endpoint) Terminating() bool { return e.flags()&epTerminating != 0 }

// String shows the endpoint in test failures.
func (e Endpoint) String() string {
	return fmt.Sprintf("%s node=%q hints=%v ready=%t serving=%t terminating=%t", e.Addr(), e.NodeName(), e.Hints(), e.Ready(), e.Serving(), e.Terminating())
}

// MarshalJSON shows the endpoint's values (the cache's golden files, debugging).
func (e Endpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Addr                        netip.Addr
		NodeName                    string `json:",omitempty"`
		Hints                       *Hints `json:",omitempty"`
		Ready, Serving, Terminating bool
	}{e.Addr(), e.NodeName(), e.Hints(), e.Ready(), e.Serving(), e.Terminating()})
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
		AddressType: known(s.AddressType, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN),
	}
	if len(s.Ports) > 0 {
		out.Ports = make([]SlicePort, len(s.Ports))
		for i, p := range s.Ports {
			sp := SlicePort{Protocol: v1.ProtocolTCP}
			if p.Name != nil {
				sp.Name = *p.Name
			}
			if p.Protocol != nil {
				sp.Protocol = known(*p.Protocol, v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP)
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
		if err != nil || a.Zone() != "" {
			out.Invalid = append(out.Invalid, e.Addresses[0])
			continue
		}
		var node string
		if e.NodeName != nil {
			node = *e.NodeName
		}
		out.Endpoints = append(out.Endpoints, NewEndpoint(a, node, shared.hints(e.Hints),
			e.Conditions.Ready == nil || *e.Conditions.Ready,
			e.Conditions.Serving == nil || *e.Conditions.Serving,
			e.Conditions.Terminating != nil && *e.Conditions.Terminating))
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
		slices.EqualFunc(a.Endpoints, b.Endpoints, Endpoint.Equal) && slices.Equal(a.Invalid, b.Invalid) &&
		slices.Equal(a.Others, b.Others)
}

// Equal reports whether e and o are the same endpoint: address, node, hints and
// conditions.
func (e Endpoint) Equal(o Endpoint) bool {
	return e.addr == o.addr && (e.where == o.where ||
		e.flags() == o.flags() && e.NodeName() == o.NodeName() && e.Hints().equal(o.Hints()))
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

// The node names, hints and conditions repeat across a cluster's endpoints: every Slice
// points to one shared value each, where the decoder gave every endpoint its own (at 10,000
// Services x 10 endpoints, 100,000 copies of a few dozen values). Shared values are never
// written to; the tables grow with the cluster's nodes and zone sets (times the 16 sets of
// family and conditions), never with its endpoints.
var shared = &interner{names: map[string]string{}, hintSets: map[string]*Hints{}, placements: map[placementKey]*placement{}}

// interner hands out one copy per distinct node name and per distinct set of hints. It is
// safe for concurrent use (the informers convert in their own goroutines).
type interner struct {
	mu         sync.Mutex
	names      map[string]string
	hintSets   map[string]*Hints
	placements map[placementKey]*placement
}

// bare are the placements of endpoints with no node name and no hints, by flags.
var bare = func() (b [16]placement) {
	for i := range b {
		b[i].flags = uint8(i)
	}
	return b
}()

type placementKey struct {
	node  string
	hints *Hints
	flags uint8
}

// placement returns the shared placement of node, hints (hints from hints, or nil) and
// flags, under one lock: it runs for every endpoint of every slice the informer converts.
func (in *interner) placement(node string, hints *Hints, flags uint8) *placement {
	if node == "" && hints == nil {
		return &bare[flags&0xf] // no lock, no map: an endpoint without node or hints
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if p, ok := in.placements[placementKey{node, hints, flags}]; ok {
		return p
	}
	name, ok := in.names[node] // the node's copy other placements share
	if !ok {
		name = strings.Clone(node)
		in.names[name] = name
	}
	p := &placement{node: name, hints: hints, flags: flags}
	in.placements[placementKey{name, hints, flags}] = p
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
