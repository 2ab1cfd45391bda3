package desired

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Every part ComputeService skips comes back as a SkipError with its reason.
func TestComputeServiceSkipReasons(t *testing.T) {
	opts := Options{ExternalIPAllowedCIDRs: prefixes("203.0.113.0/24")}
	tests := []struct {
		name string
		svc  *v1.Service
		sl   []*discoveryv1.EndpointSlice
		want []Reason
	}{
		{"scheduler annotation", service("a", []string{"10.96.0.1"}, []v1.ServicePort{port("p", v1.ProtocolTCP, 80)}, func(s *v1.Service) {
			s.Annotations = map[string]string{SchedulerAnnotation: "random"}
		}), nil, []Reason{ReasonInvalidScheduler}},
		{"protocol", service("b", []string{"10.96.0.2"}, []v1.ServicePort{port("p", "ICMP", 1)}), nil, []Reason{ReasonUnsupportedProtocol}},
		{"family", service("c", []string{"10.96.0.3", "fd00::3"}, []v1.ServicePort{port("p", v1.ProtocolTCP, 80)}), nil, []Reason{ReasonFamilyDisabled}},
		{"cluster IP", service("d", []string{"10.96.0.300"}, []v1.ServicePort{port("p", v1.ProtocolTCP, 80)}), nil, []Reason{ReasonInvalidAddress}},
		{"endpoint", service("e", []string{"10.96.0.5"}, []v1.ServicePort{port("p", v1.ProtocolTCP, 80)}),
			[]*discoveryv1.EndpointSlice{slice("e-1", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{sport("p", v1.ProtocolTCP, 8080)}, ep{addr: "bogus"})},
			[]Reason{ReasonInvalidAddress}},
		{"external IPs", service("f", []string{"10.96.0.6"}, []v1.ServicePort{port("p", v1.ProtocolTCP, 80)}, func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"203.0.113.7", "198.51.100.7", "nope"}
		}), nil, []Reason{ReasonExternalIPNotAllowed, ReasonInvalidAddress}},
		{"source range", nodePortSvc("g", "10.96.0.7", v1.ServiceTypeLoadBalancer, npPort("p", v1.ProtocolTCP, 80, 30080)), nil, []Reason{ReasonInvalidAddress}},
	}
	tests[len(tests)-1].svc.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/33"}
	tests[len(tests)-1].svc.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.9"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := ComputeService(opts, Node{Name: "n"}, nil, APIServiceOf(tt.svc), SlicesOf(tt.sl...))
			var got []Reason
			for _, err := range errs {
				var s *SkipError
				if !errors.As(err, &s) {
					t.Errorf("error %v is no *SkipError", err)
				}
				got = append(got, ReasonOf(err))
			}
			slices.Sort(got)
			slices.Sort(tt.want)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reasons (-want +got):\n%s\nerrors: %v", diff, errs)
			}
		})
	}
}

func TestReasonOf(t *testing.T) {
	inner := errors.New("bad")
	wrapped := fmt.Errorf("context: %w", &SkipError{Reason: ReasonInvalidAddress, Err: fmt.Errorf("parse: %w", inner)})
	got := []Reason{ReasonOf(wrapped), ReasonOf(errors.New("something new")), ReasonOf(nil)}
	if diff := cmp.Diff([]Reason{ReasonInvalidAddress, ReasonOther, ReasonOther}, got); diff != "" {
		t.Errorf("ReasonOf (-want +got):\n%s", diff)
	}
	if !errors.Is(wrapped, inner) || wrapped.Error() != "context: parse: bad" {
		t.Errorf("SkipError hides its cause or changes the message: %q", wrapped)
	}
}
