package clusterdns

import (
	"net"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
)

// readyEndpoint is a ready endpoint of a Service with the ports of its EndpointSlice.
type readyEndpoint struct {
	discoveryv1.Endpoint
	ports []discoveryv1.EndpointPort
}

// endpoints returns the ready endpoints of svc, from its EndpointSlices of IP addresses.
func (h *Handler) endpoints(svc *corev1.Service) ([]readyEndpoint, error) {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name})
	slices, err := h.slices.EndpointSlices(svc.Namespace).List(sel)
	if err != nil {
		h.logger.Error(err, "Cannot list the EndpointSlices of a Service", "service", klog.KObj(svc))
		return nil, err
	}
	var eps []readyEndpoint
	for _, s := range slices {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				eps = append(eps, readyEndpoint{Endpoint: ep, ports: s.Ports})
			}
		}
	}
	return eps, nil
}

// srv answers SRV for svc's port named port with protocol proto, or for all its named ports
// when port is "".
func (h *Handler) srv(q dns.Question, svc *corev1.Service, port, proto string) reply {
	if q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY {
		if port != "" && !hasPort(svc, port, proto) {
			return nxdomain
		}
		return reply{}
	}
	match := func(name string, protocol corev1.Protocol) bool {
		if port == "" {
			return name != ""
		}
		return name == port && strings.EqualFold(string(protocol), proto)
	}
	if port != "" && !hasPort(svc, port, proto) {
		return nxdomain
	}
	target := svc.Name + "." + svc.Namespace + ".svc." + h.domain
	var r reply
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		for _, p := range svc.Spec.Ports {
			if match(p.Name, p.Protocol) {
				r.answer = append(r.answer, &dns.SRV{Hdr: h.hdr(q.Name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(p.Port), Target: target})
			}
		}
		if len(r.answer) > 0 {
			for _, ip := range svc.Spec.ClusterIPs {
				r.extra = appendAddr(r.extra, h.hdr(target, 0), dns.TypeANY, ip)
			}
		}
		return r
	}
	eps, err := h.endpoints(svc)
	if err != nil {
		return reply{rcode: dns.RcodeServerFailure}
	}
	for _, ep := range eps {
		for _, p := range ep.ports {
			if p.Name == nil || p.Port == nil || !match(*p.Name, ptrProtocol(p.Protocol)) {
				continue
			}
			for _, ip := range ep.Addresses {
				host := endpointLabel(ep.Endpoint, ip) + "." + target
				r.answer = append(r.answer, &dns.SRV{Hdr: h.hdr(q.Name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(*p.Port), Target: host})
				r.extra = appendAddr(r.extra, h.hdr(host, 0), dns.TypeANY, ip)
			}
		}
	}
	return r
}

// hasPort says whether svc has a port named port with protocol proto.
func hasPort(svc *corev1.Service, port, proto string) bool {
	for _, p := range svc.Spec.Ports {
		if p.Name == port && strings.EqualFold(string(p.Protocol), proto) {
			return true
		}
	}
	return false
}

// ptrProtocol is an EndpointPort's protocol, TCP when unset.
func ptrProtocol(p *corev1.Protocol) corev1.Protocol {
	if p == nil {
		return corev1.ProtocolTCP
	}
	return *p
}

// pod answers for <a-b-c-d>.<ns>.pod.D: the address the name spells.
func (h *Handler) pod(q dns.Question, label string) reply {
	s := strings.ReplaceAll(label, "-", ".")
	if strings.Count(label, "-") != 3 {
		s = strings.ReplaceAll(label, "-", ":")
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nxdomain
	}
	return reply{answer: appendAddr(nil, h.hdr(q.Name, 0), q.Qtype, ip.String())}
}

// endpointLabel is the first label of an endpoint's name: its hostname, else its dashed
// address.
func endpointLabel(ep discoveryv1.Endpoint, ip string) string {
	if ep.Hostname != nil && *ep.Hostname != "" {
		return strings.ToLower(*ep.Hostname)
	}
	return dashed(ip)
}

// dashed writes an address as one label: 10.0.0.1 as 10-0-0-1, fd00::1 as fd00--1.
func dashed(ip string) string {
	return strings.NewReplacer(".", "-", ":", "-").Replace(ip)
}

// appendAddr appends ip as an A or AAAA record with header hdr if qtype asks for its family.
func appendAddr(rrs []dns.RR, hdr dns.RR_Header, qtype uint16, ip string) []dns.RR {
	a := net.ParseIP(ip)
	switch {
	case a == nil:
	case a.To4() != nil && (qtype == dns.TypeA || qtype == dns.TypeANY):
		hdr.Rrtype = dns.TypeA
		rrs = append(rrs, &dns.A{Hdr: hdr, A: a.To4()})
	case a.To4() == nil && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
		hdr.Rrtype = dns.TypeAAAA
		rrs = append(rrs, &dns.AAAA{Hdr: hdr, AAAA: a})
	}
	return rrs
}

// hdr is the header of a record named name of type t.
func (h *Handler) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: TTL}
}

// soa is the domain's SOA, which negative answers carry (its minimum is the negative TTL).
func (h *Handler) soa() dns.RR {
	return &dns.SOA{Hdr: h.hdr(h.domain, dns.TypeSOA), Ns: "ns.dns." + h.domain, Mbox: "hostmaster." + h.domain,
		Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: TTL}
}
