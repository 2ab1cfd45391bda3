package desired

import (
	"net/netip"
	"slices"
	"strconv"

	v1 "k8s.io/api/core/v1"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

const (
	// SchedulerAnnotation overrides the global IPVS scheduler for one Service, e.g.
	// `kubevs.io/scheduler: lc`. An unknown name is ignored (the global one is used) and
	// reported as an error.
	SchedulerAnnotation = "kubevs.io/scheduler"
	// ServiceProxyNameLabel marks Services handled by another proxy; kubevs ignores them,
	// as kube-proxy does.
	ServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name"
	// DefaultScheduler is the scheduler used when none is configured.
	DefaultScheduler = "rr"
	// DefaultAffinityTimeout is the ClientIP session affinity timeout when the Service sets
	// none (seconds; the Kubernetes default).
	DefaultAffinityTimeout = 10800
)

// Schedulers are the IPVS schedulers Linux offers; a scheduler must be one of them.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// ValidScheduler reports whether name is a known IPVS scheduler.
func ValidScheduler(name string) bool { return slices.Contains(Schedulers, name) }

// Ignored reports whether kubevs leaves svc alone: headless, ExternalName, or claimed by
// another proxy through the service-proxy-name label.
func Ignored(svc *APIService) bool {
	if svc == nil || svc.ProxyName {
		return true
	}
	if svc.Spec.Type == v1.ServiceTypeExternalName {
		return true
	}
	return svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == v1.ClusterIPNone
}

// ComputeService returns the kernel state svc needs on node, given the EndpointSlices of
// svc (SliceOf each; slices of other Services must not be passed). It is pure and
// deterministic. The errors name the parts it had to skip (an invalid annotation, address
// or port, an externalIP or LoadBalancer ingress IP outside its allow-list or refused by
// the guard rails of guard.go); the returned Service is still the best state for
// everything else. A nil or ignored svc computes to the zero Service.
//
// Per cluster IP family and Service port it wants: the ClusterIP virtual server (bound to
// the dummy link); a NodePort virtual server on every NodePort address of that family
// (NodePort and LoadBalancer Services; node addresses, never bound); one per externalIP and
// per LoadBalancer ingress IP of that family (bound; never a node's address, which the
// guard rails refuse).
// ClusterIP virtual servers get the endpoints of internalTrafficPolicy, the others those of
// externalTrafficPolicy (see pick).
func ComputeService(opts Options, node Node, local LocalPods, svc *APIService, eps []*Slice) (Service, []error) {
	var out Service
	if Ignored(svc) {
		return out, nil
	}
	c := serviceComputation{opts: opts, node: node, out: &out, name: svc.Namespace + "/" + svc.Name}
	c.sched = opts.Scheduler
	if c.sched == "" {
		c.sched = DefaultScheduler
	}
	if a, ok := svc.Annotations[SchedulerAnnotation]; ok {
		if ValidScheduler(a) {
			c.sched = a
		} else {
			c.errs = append(c.errs, skipped(ReasonInvalidScheduler, "service %s: annotation %s: unknown scheduler %q, using %q", c.name, SchedulerAnnotation, a, c.sched))
		}
	}
	c.persistent, c.timeout = affinity(svc)
	c.extLocal = externalPolicyLocal(svc)
	c.intLocal = svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	hasNodePorts := svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer
	c.extIPs = c.externalIPs(svc)
	c.lbIPs = c.loadBalancerIPs(svc)
	c.ranges = c.sourceRanges(svc)
	c.pods, c.eps = local, eps
	ips := ClusterIPs(svc)
	out.VirtualServers = make([]VirtualServer, 0, len(ips)*len(svc.Spec.Ports))
	out.Entries = make([]SetEntry, 0, len(ips)*(1+len(svc.Spec.Ports)))
	for _, ip := range ips {
		vip, err := netip.ParseAddr(ip)
		if err != nil {
			c.errs = append(c.errs, skipped(ReasonInvalidAddress, "service %s: parse cluster IP %q: %w", c.name, ip, err))
			continue
		}
		vip = vip.Unmap()
		fam := familyOf(vip)
		if !familyEnabled(opts, fam) {
			c.errs = append(c.errs, skipped(ReasonFamilyDisabled, "service %s: cluster IP %s: family %s not enabled on this node", c.name, vip, fam))
			continue
		}
		sn := SetNames(fam)
		c.bind(sn, vip)
		var nodeIPs []netip.Addr
		if hasNodePorts {
			nodeIPs = nodePortAddresses(opts, node, fam)
		}
		for _, sp := range svc.Spec.Ports {
			c.servicePort(sn, vip, nodeIPs, sp)
		}
		if c.extLocal && svc.Spec.HealthCheckNodePort > 0 && svc.Spec.HealthCheckNodePort <= 65535 {
			out.HealthCheckNodePort = uint16(svc.Spec.HealthCheckNodePort)
			c.entry(sn.HealthCheckNodePort, ipset.Entry(strconv.Itoa(int(svc.Spec.HealthCheckNodePort))))
		}
	}
	out.LocalEndpoints = len(c.readyLocal)
	sortService(&out)
	return out, c.errs
}

// ClusterIPs returns spec.clusterIPs, or spec.clusterIP for objects that predate dual-stack.
func ClusterIPs(svc *APIService) []string {
	if len(svc.Spec.ClusterIPs) > 0 {
		return svc.Spec.ClusterIPs
	}
	return []string{svc.Spec.ClusterIP}
}

func affinity(svc *APIService) (bool, uint32) {
	if svc.Spec.SessionAffinity != v1.ServiceAffinityClientIP {
		return false, 0
	}
	t := uint32(DefaultAffinityTimeout)
	if svc.Spec.AffinityTimeout > 0 {
		t = uint32(svc.Spec.AffinityTimeout)
	}
	return true, t
}

func protocol(p v1.Protocol) (ipvs.Protocol, bool) {
	switch p {
	case v1.ProtocolTCP, "":
		return ipvs.TCP, true
	case v1.ProtocolUDP:
		return ipvs.UDP, true
	case v1.ProtocolSCTP:
		return ipvs.SCTP, true
	}
	return "", false
}

func familyOf(a netip.Addr) ipset.Family {
	if a.Is4() {
		return ipset.IPv4
	}
	return ipset.IPv6
}

func familyEnabled(opts Options, f ipset.Family) bool {
	if len(opts.Families) == 0 {
		return f == ipset.IPv4
	}
	return slices.Contains(opts.Families, f)
}

// ipPortEntry is a hash:ip,port member in canonical form, e.g. "10.96.0.10,udp:53".
func ipPortEntry(a netip.Addr, p ipvs.Protocol, port uint16) ipset.Entry {
	return ipset.Entry(a.String() + "," + protoName(p) + ":" + strconv.Itoa(int(port)))
}

// loopBackEntry is a hash:ip,port,ip member: a pod reaching itself through a Service.
func loopBackEntry(a netip.Addr, p ipvs.Protocol, port uint16) ipset.Entry {
	return ipset.Entry(string(ipPortEntry(a, p, port)) + "," + a.String())
}

func protoName(p ipvs.Protocol) string {
	switch p {
	case ipvs.UDP:
		return "udp"
	case ipvs.SCTP:
		return "sctp"
	}
	return "tcp"
}
