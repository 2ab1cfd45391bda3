package config

import (
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubevs/kubevs/proxier/desired"
)

// Validate checks a defaulted configuration and returns every problem with its field path.
func Validate(c *Configuration) field.ErrorList {
	var errs field.ErrorList
	if c.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{APIVersion}))
	}
	if c.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{Kind}))
	}
	p := field.NewPath("nodeName")
	if c.NodeName == "" {
		errs = append(errs, field.Required(p, "the host name is unknown: set nodeName or --hostname-override"))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(c.NodeName) {
			errs = append(errs, field.Invalid(p, c.NodeName, msg))
		}
	}
	errs = append(errs, validateCIDRs(field.NewPath("clusterCIDRs"), c.ClusterCIDRs, true)...)
	if !desired.ValidScheduler(c.Scheduler) {
		errs = append(errs, field.NotSupported(field.NewPath("scheduler"), c.Scheduler, desired.Schedulers))
	}
	if c.SyncPeriod.Duration <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("syncPeriod"), c.SyncPeriod.Duration.String(), "must be greater than 0"))
	}
	if c.MinSyncPeriod != nil {
		p := field.NewPath("minSyncPeriod")
		switch {
		case c.MinSyncPeriod.Duration < 0:
			errs = append(errs, field.Invalid(p, c.MinSyncPeriod.Duration.String(), "must be greater than or equal to 0"))
		case c.MinSyncPeriod.Duration > c.SyncPeriod.Duration:
			errs = append(errs, field.Invalid(p, c.MinSyncPeriod.Duration.String(), "must be less than or equal to syncPeriod"))
		}
	}
	if m := c.FullReadMillicores; m != nil && (*m < 1 || *m > 1000) {
		errs = append(errs, field.Invalid(field.NewPath("fullReadMillicores"), *m, "must be between 1 and 1000"))
	}
	errs = append(errs, validateIPVS(field.NewPath("ipvs"), &c.IPVS)...)
	errs = append(errs, validateCIDRs(field.NewPath("nodePortAddresses"), c.NodePortAddresses, false)...)
	errs = append(errs, validateCIDRs(field.NewPath("externalIPAllowedCIDRs"), c.ExternalIPAllowedCIDRs, false)...)
	if c.DenyAllExternalIPs && len(c.ExternalIPAllowedCIDRs) > 0 {
		errs = append(errs, field.Forbidden(field.NewPath("externalIPAllowedCIDRs"), "must be empty when denyAllExternalIPs is true"))
	}
	errs = append(errs, validateCIDRs(field.NewPath("loadBalancerIngressAllowedCIDRs"), c.LoadBalancerIngressAllowedCIDRs, false)...)
	errs = append(errs, validateCIDRs(field.NewPath("serviceCIDRs"), c.ServiceCIDRs, false)...)
	if c.MetricsDisabled {
		if c.MetricsBindAddress != "" {
			errs = append(errs, field.Forbidden(field.NewPath("metricsBindAddress"), "must be empty when metricsDisabled is true"))
		}
		if c.EnableProfiling {
			errs = append(errs, field.Forbidden(field.NewPath("enableProfiling"), "profiles are served on the metrics address: needs metricsDisabled false"))
		}
		if c.MetricsServiceTraffic {
			errs = append(errs, field.Forbidden(field.NewPath("metricsServiceTraffic"), "the counters are served on the metrics address: needs metricsDisabled false"))
		}
	} else {
		errs = append(errs, validateBindAddress(field.NewPath("metricsBindAddress"), c.MetricsBindAddress, !c.MetricsAllowNonLoopback)...)
	}
	errs = append(errs, validateBindAddress(field.NewPath("healthzBindAddress"), c.HealthzBindAddress, false)...)
	if c.HealthzBindAddress == c.MetricsBindAddress {
		errs = append(errs, field.Duplicate(field.NewPath("healthzBindAddress"), c.HealthzBindAddress))
	}
	errs = append(errs, validateAbsPath(field.NewPath("nodeAPISocket"), c.NodeAPISocket)...)
	errs = append(errs, validateAbsPath(field.NewPath("registrationDir"), c.RegistrationDir)...)
	errs = append(errs, validateAbsPath(field.NewPath("stateDir"), c.StateDir)...)
	errs = append(errs, validateConntrack(field.NewPath("conntrack"), &c.Conntrack)...)
	errs = append(errs, validateClient(field.NewPath("clientConnection"), &c.ClientConnection)...)
	return errs
}

// contentTypes are the request content types the API server speaks.
var contentTypes = []string{"application/vnd.kubernetes.protobuf", "application/json"}

func validateClient(p *field.Path, c *ClientConnectionConfiguration) field.ErrorList {
	var errs field.ErrorList
	if c.QPS < 0 {
		errs = append(errs, field.Invalid(p.Child("qps"), c.QPS, "must be greater than or equal to 0"))
	}
	if c.Burst < 0 {
		errs = append(errs, field.Invalid(p.Child("burst"), c.Burst, "must be greater than or equal to 0"))
	}
	if c.ContentType != "" && !slices.Contains(contentTypes, c.ContentType) {
		errs = append(errs, field.NotSupported(p.Child("contentType"), c.ContentType, contentTypes))
	}
	return errs
}

func validateConntrack(p *field.Path, c *ConntrackConfiguration) field.ErrorList {
	var errs field.ErrorList
	for _, n := range []struct {
		name string
		v    *int32
	}{{"maxPerCore", c.MaxPerCore}, {"min", c.Min}} {
		if n.v != nil && *n.v < 0 {
			errs = append(errs, field.Invalid(p.Child(n.name), *n.v, "must be greater than or equal to 0"))
		}
	}
	for _, t := range c.Timeouts() {
		if t.Value < 0 {
			errs = append(errs, field.Invalid(p.Child(t.Field), t.Value.String(), "must be greater than or equal to 0"))
		}
	}
	return errs
}

func validateIPVS(p *field.Path, c *IPVSConfiguration) field.ErrorList {
	var errs field.ErrorList
	for _, t := range []struct {
		name string
		d    time.Duration
	}{
		{"tcpTimeout", c.TCPTimeout.Duration},
		{"tcpFinTimeout", c.TCPFinTimeout.Duration},
		{"udpTimeout", c.UDPTimeout.Duration},
	} {
		if t.d < 0 {
			errs = append(errs, field.Invalid(p.Child(t.name), t.d.String(), "must be greater than or equal to 0"))
		}
	}
	errs = append(errs, validateCIDRs(p.Child("excludeCIDRs"), c.ExcludeCIDRs, false)...)
	if g := c.GracefulTerminationPeriod; g != nil && g.Duration < 0 {
		errs = append(errs, field.Invalid(p.Child("gracefulTerminationPeriod"), g.Duration.String(), "must be greater than or equal to 0"))
	}
	return errs
}

// validateCIDRs checks that every entry is a CIDR; onePerFamily also refuses a second CIDR
// of the same IP family.
func validateCIDRs(p *field.Path, cidrs []string, onePerFamily bool) field.ErrorList {
	var errs field.ErrorList
	seen := map[bool]bool{}
	for i, s := range cidrs {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, field.Invalid(p.Index(i), s, "must be a CIDR such as 10.244.0.0/16 or fd00::/48"))
			continue
		}
		if onePerFamily {
			v4 := pfx.Addr().Is4()
			if seen[v4] {
				errs = append(errs, field.Invalid(p.Index(i), s, "at most one CIDR per IP family"))
			}
			seen[v4] = true
		}
	}
	return errs
}

// validateBindAddress checks host:port with a literal IP host; loopbackOnly refuses any
// other address (including the unspecified one).
func validateBindAddress(p *field.Path, addr string, loopbackOnly bool) field.ErrorList {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return field.ErrorList{field.Invalid(p, addr, "must be host:port, for example 127.0.0.1:10249")}
	}
	var errs field.ErrorList
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		errs = append(errs, field.Invalid(p, addr, "host must be an IP address"))
	case loopbackOnly && !ip.IsLoopback():
		errs = append(errs, field.Invalid(p, addr, "not a loopback address: set metricsAllowNonLoopback to expose metrics"))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, field.Invalid(p, addr, "port must be between 1 and 65535"))
	}
	return errs
}

func validateAbsPath(p *field.Path, path string) field.ErrorList {
	if !filepath.IsAbs(path) {
		return field.ErrorList{field.Invalid(p, path, "must be an absolute path")}
	}
	return nil
}

func joinStrict(errs []error) error { return errors.Join(errs...) }
