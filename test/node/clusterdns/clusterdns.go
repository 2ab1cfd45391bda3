// Package clusterdns is the real-node beds' cluster DNS (test/node): what kube-dns and CoreDNS
// answer for the cluster domain, from the API server's Services and EndpointSlices, so that
// pods (upstream's e2e specs among them) reach Services by name. It answers only for the
// cluster domain and has no upstream resolver (the beds have no outside network); it is a test
// component, not a DNS server for clusters.
//
// Names, as the Kubernetes DNS specification writes them, under the domain D (cluster.local):
//   - <svc>.<ns>.svc.D: A/AAAA of a Service's ClusterIPs; of a headless Service, the addresses
//     of its ready endpoints (every endpoint the EndpointSlice controller marks ready, so also
//     the not-ready ones of a Service that publishes them); CNAME of an ExternalName Service;
//     SRV of every named port;
//   - <hostname>.<svc>.<ns>.svc.D and <a-b-c-d>.<svc>.<ns>.svc.D: one endpoint of a headless
//     Service, by its hostname or its dashed address;
//   - _<port>._<proto>.<svc>.<ns>.svc.D: SRV of one named port (for a headless Service, one
//     record per ready endpoint, naming it as above);
//   - <a-b-c-d>.<ns>.pod.D: that address (kube-dns's "pods insecure");
//   - D, svc.D, <ns>.svc.D with Services: exist, no records (NODATA).
//
// Every other name in the domain is NXDOMAIN, with the domain's SOA. A name outside the domain
// is NXDOMAIN too, not REFUSED: a resolver walking its search list (ndots:5) then goes on to
// the next suffix instead of giving up.
package clusterdns

import (
	"net"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/klog/v2"
)

// TTL is the time to live of every answer, in seconds (CoreDNS's default).
const TTL = 5

// Handler answers DNS queries for the cluster domain from listers. It is a dns.Handler; it
// only reads the listers, so it is safe for concurrent use.
type Handler struct {
	domain   string // lower case, fully qualified: "cluster.local."
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	logger   klog.Logger
}

var _ dns.Handler = (*Handler)(nil)

// NewHandler returns a Handler for domain (e.g. "cluster.local").
func NewHandler(logger klog.Logger, domain string, services corelisters.ServiceLister, slices discoverylisters.EndpointSliceLister) *Handler {
	return &Handler{domain: dns.Fqdn(strings.ToLower(domain)), services: services, slices: slices, logger: logger}
}

// ServeDNS answers r's one question.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.Compress = true
	if len(r.Question) != 1 || r.Question[0].Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeFormatError
	} else {
		q := r.Question[0]
		a := h.answer(q)
		m.Rcode, m.Answer, m.Extra = a.rcode, a.answer, a.extra
		if a.rcode == dns.RcodeNameError || len(a.answer) == 0 {
			m.Ns = []dns.RR{h.soa()}
		}
		h.logger.V(4).Info("Query", "name", q.Name, "type", dns.TypeToString[q.Qtype], "rcode", dns.RcodeToString[a.rcode], "answers", len(a.answer))
	}
	size := dns.MinMsgSize
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		size = dns.MaxMsgSize
	} else if opt := r.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	m.Truncate(size)
	if err := w.WriteMsg(m); err != nil {
		h.logger.V(2).Info("Cannot write the answer", "name", m.Question, "err", err)
	}
}

// reply is an answer before it becomes a message.
type reply struct {
	rcode         int
	answer, extra []dns.RR
}

var nxdomain = reply{rcode: dns.RcodeNameError}

// answer answers one question.
func (h *Handler) answer(q dns.Question) reply {
	name := strings.ToLower(q.Name)
	if name != h.domain && !strings.HasSuffix(name, "."+h.domain) {
		return nxdomain
	}
	// The labels before the domain, the last one first: [svc ns name ...].
	rel := dns.SplitDomainName(strings.TrimSuffix(strings.TrimSuffix(name, h.domain), "."))
	for i, j := 0, len(rel)-1; i < j; i, j = i+1, j-1 {
		rel[i], rel[j] = rel[j], rel[i]
	}
	switch {
	case len(rel) == 0:
		if q.Qtype == dns.TypeSOA {
			return reply{answer: []dns.RR{h.soa()}}
		}
		return reply{}
	case rel[0] == "pod" && len(rel) == 3:
		return h.pod(q, rel[2])
	case rel[0] != "svc":
		return nxdomain
	case len(rel) == 1:
		return reply{}
	case len(rel) == 2:
		if svcs, err := h.services.Services(rel[1]).List(labels.Everything()); err == nil && len(svcs) > 0 {
			return reply{}
		}
		return nxdomain
	}
	svc, err := h.services.Services(rel[1]).Get(rel[2])
	if apierrors.IsNotFound(err) {
		return nxdomain
	} else if err != nil {
		h.logger.Error(err, "Cannot read a Service", "service", klog.KRef(rel[1], rel[2]))
		return reply{rcode: dns.RcodeServerFailure}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if len(rel) != 3 {
			return nxdomain
		}
		return reply{answer: []dns.RR{&dns.CNAME{Hdr: h.hdr(q.Name, dns.TypeCNAME), Target: dns.Fqdn(svc.Spec.ExternalName)}}}
	}
	switch len(rel) {
	case 3:
		return h.service(q, svc)
	case 4:
		return h.endpoint(q, svc, rel[3])
	case 5:
		port, proto, ok := srvLabels(rel[4], rel[3])
		if !ok {
			return nxdomain
		}
		return h.srv(q, svc, port, proto)
	}
	return nxdomain
}

// srvLabels reads "_port" and "_proto".
func srvLabels(port, proto string) (string, string, bool) {
	if !strings.HasPrefix(port, "_") || !strings.HasPrefix(proto, "_") {
		return "", "", false
	}
	return port[1:], proto[1:], true
}

// service answers for <svc>.<ns>.svc.D.
func (h *Handler) service(q dns.Question, svc *corev1.Service) reply {
	if q.Qtype == dns.TypeSRV {
		return h.srv(q, svc, "", "")
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		var r reply
		for _, ip := range svc.Spec.ClusterIPs {
			r.answer = appendAddr(r.answer, h.hdr(q.Name, 0), q.Qtype, ip)
		}
		return r
	}
	eps, err := h.endpoints(svc)
	if err != nil {
		return reply{rcode: dns.RcodeServerFailure}
	}
	var r reply
	seen := map[string]bool{}
	for _, ep := range eps {
		for _, ip := range ep.Addresses {
			if !seen[ip] {
				seen[ip] = true
				r.answer = appendAddr(r.answer, h.hdr(q.Name, 0), q.Qtype, ip)
			}
		}
	}
	return r
}

// endpoint answers for <hostname or dashed address>.<svc>.<ns>.svc.D: one endpoint of a
// headless Service.
func (h *Handler) endpoint(q dns.Question, svc *corev1.Service, label string) reply {
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		return nxdomain
	}
	eps, err := h.endpoints(svc)
	if err != nil {
		return reply{rcode: dns.RcodeServerFailure}
	}
	found := false
	var r reply
	for _, ep := range eps {
		for _, ip := range ep.Addresses {
			if endpointLabel(ep.Endpoint, ip) == label || dashed(ip) == label {
				found = true
				r.answer = appendAddr(r.answer, h.hdr(q.Name, 0), q.Qtype, ip)
			}
		}
	}
	if !found {
		return nxdomain
	}
	return r
}
