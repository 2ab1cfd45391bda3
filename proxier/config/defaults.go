package config

import (
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Default values; see the fields of Configuration.
const (
	DefaultScheduler                 = "rr"
	DefaultSyncPeriod                = 30 * time.Second
	DefaultMinSyncPeriod             = time.Second
	DefaultFullReadMillicores        = 5
	DefaultGracefulTerminationPeriod = 60 * time.Second
	DefaultMetricsBindAddress        = "127.0.0.1:10249"
	DefaultHealthzBindAddress        = "127.0.0.1:10256"
	DefaultNodeAPISocket             = "/run/kubevs/proxier.sock"
	DefaultRegistrationDir           = "/run/kubevs/registrations"
	DefaultStateDir                  = "/var/lib/kubevs"
)

// hostname is replaced in tests.
var hostname = os.Hostname

// SetDefaults fills every unset field of c with its default. It is idempotent.
func SetDefaults(c *Configuration) {
	if c.NodeName == "" {
		if h, err := hostname(); err == nil {
			c.NodeName = strings.ToLower(strings.TrimSpace(h))
		}
	}
	if c.Scheduler == "" {
		c.Scheduler = DefaultScheduler
	}
	if c.SyncPeriod.Duration == 0 {
		c.SyncPeriod.Duration = DefaultSyncPeriod
	}
	if c.MinSyncPeriod == nil {
		c.MinSyncPeriod = &metav1.Duration{Duration: DefaultMinSyncPeriod}
	}
	if c.FullReadMillicores == nil {
		m := int32(DefaultFullReadMillicores)
		c.FullReadMillicores = &m
	}
	if c.IPVS.StrictARP == nil {
		t := true
		c.IPVS.StrictARP = &t
	}
	if c.IPVS.GracefulTerminationPeriod == nil {
		c.IPVS.GracefulTerminationPeriod = &metav1.Duration{Duration: DefaultGracefulTerminationPeriod}
	}
	if c.MetricsBindAddress == "" && !c.MetricsDisabled {
		c.MetricsBindAddress = DefaultMetricsBindAddress
	}
	if c.HealthzBindAddress == "" {
		c.HealthzBindAddress = DefaultHealthzBindAddress
	}
	if c.NodeAPISocket == "" {
		c.NodeAPISocket = DefaultNodeAPISocket
	}
	if c.RegistrationDir == "" {
		c.RegistrationDir = DefaultRegistrationDir
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
}
