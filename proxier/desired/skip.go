package desired

import (
	"errors"
	"fmt"
	"net/netip"
)

// Reason says why ComputeService skipped part of a Service. The values are metric label
// values (kubevs_objects_skipped_total{reason}); never change them.
type Reason string

// The reasons of a SkipError.
const (
	// ReasonInvalidScheduler: the kubevs.io/scheduler annotation names no known scheduler
	// (the global one is used instead).
	ReasonInvalidScheduler Reason = "invalid_scheduler_annotation"
	// ReasonUnsupportedProtocol: a Service port's protocol is not TCP, UDP or SCTP.
	ReasonUnsupportedProtocol Reason = "unsupported_protocol"
	// ReasonFamilyDisabled: a cluster IP of an IP family the node does not serve.
	ReasonFamilyDisabled Reason = "ip_family_disabled"
	// ReasonInvalidAddress: an address or range that does not parse (cluster IP, endpoint,
	// externalIP, loadBalancerSourceRanges).
	ReasonInvalidAddress Reason = "invalid_address"
	// ReasonExternalIPNotAllowed: an externalIP outside Options.ExternalIPAllowedCIDRs.
	ReasonExternalIPNotAllowed Reason = "external_ip_not_allowed"
	// ReasonExternalIPsDenied: an externalIP while Options.DenyAllExternalIPs is set.
	ReasonExternalIPsDenied Reason = "external_ips_denied"
	// ReasonLoadBalancerIPNotAllowed: a LoadBalancer ingress IP outside
	// Options.LoadBalancerIngressAllowedCIDRs.
	ReasonLoadBalancerIPNotAllowed Reason = "load_balancer_ip_not_allowed"
	// The guard rails (guard.go): an externalIP, LoadBalancer ingress IP or NodePort that
	// would take a reserved address, whatever the allow-lists say.
	ReasonRefusedSpecial     Reason = "refused_special_address" // loopback, link-local, multicast, ...
	ReasonRefusedAPIServer   Reason = "refused_api_server_address"
	ReasonRefusedNodeAddress Reason = "refused_node_address"
	ReasonRefusedPodCIDR     Reason = "refused_pod_cidr"
	ReasonRefusedServiceCIDR Reason = "refused_service_cidr"
	ReasonRefusedClusterIP   Reason = "refused_cluster_ip"
	// ReasonOther is what ReasonOf returns for an error that is not a SkipError.
	ReasonOther Reason = "other"
)

// SkipError is every error ComputeService returns: one part of a Service it skipped, and
// why. Err holds the message (and a parse error, when there is one).
type SkipError struct {
	Reason Reason
	Err    error
	// Addr is the refused address of an externalIP, LoadBalancer ingress IP or NodePort
	// refusal (invalid otherwise).
	Addr netip.Addr
	// Event is the reason of the Kubernetes Event that reports the refusal on the Service
	// (EventExternalIPRefused, ...); empty when the skip is not reported as an Event.
	Event string
}

// Error returns the message, without the reason.
func (e *SkipError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *SkipError) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of a SkipError in err's chain, else ReasonOther.
func ReasonOf(err error) Reason {
	var s *SkipError
	if errors.As(err, &s) {
		return s.Reason
	}
	return ReasonOther
}

// skipped builds a SkipError with a formatted message (%w wraps as in fmt.Errorf).
func skipped(r Reason, format string, args ...any) error {
	return &SkipError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// errorf is fmt.Errorf, named for the SkipErrors built field by field.
func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
