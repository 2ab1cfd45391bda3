// Package config owns the proxier's versioned configuration file: the
// ProxierConfiguration type (apiVersion kubevs.io/v1alpha1), its strict decoding, its
// defaults and its validation. Errors name the offending field by its path in the file.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The type identity every configuration file must carry.
const (
	APIVersion = "kubevs.io/v1alpha1"
	Kind       = "ProxierConfiguration"
)

// Configuration is the proxier's configuration file. Zero values are replaced by the
// defaults documented on each field (see SetDefaults).
type Configuration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	// NodeName is the name of the Node this proxier serves. Default: the host name
	// (lowercased), or --hostname-override.
	NodeName string `json:"nodeName,omitempty"`
	// Kubeconfig is the path of the kubeconfig file. Empty: in-cluster configuration.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// ClusterCIDRs are the pod CIDRs of the cluster, at most one per IP family. Traffic from
	// outside them to a Service is masqueraded.
	ClusterCIDRs []string `json:"clusterCIDRs,omitempty"`
	// MasqueradeAll masquerades every packet sent to a Service VIP.
	MasqueradeAll bool `json:"masqueradeAll,omitempty"`
	// Scheduler is the IPVS scheduler for Services that do not choose one (one of
	// desired.Schedulers; a Service may pick another with the kubevs.io/scheduler
	// annotation). Default: rr.
	Scheduler string `json:"scheduler,omitempty"`
	// SyncPeriod is the maximum interval between full resyncs of the kernel state, whatever
	// partial syncs ran meanwhile; a change waiting when one falls due is applied first. Each
	// reads the kernel, in full or as a probe (FullReadMillicores). Default: 30s.
	SyncPeriod metav1.Duration `json:"syncPeriod,omitempty"`
	// MinSyncPeriod is the most a change waits to be coalesced with others, not a floor: a
	// change is applied at once unless changes were already waiting when the last partial
	// sync ended (they arrive faster than they are applied); then the next partial sync
	// starts 4x the duration of that sync after it ended (so partial syncs take at most a
	// fifth of the time and a burst is applied in few syncs), but never more than
	// MinSyncPeriod later. Default: 1s. Zero: never waits.
	MinSyncPeriod *metav1.Duration `json:"minSyncPeriod,omitempty"`
	// FullReadMillicores is the CPU, in thousandths of one CPU on average, that the full
	// read of the kernel (every virtual server's real servers, every owned set's members)
	// may use. Every syncPeriod a resync reads the kernel; it reads everything when the last
	// full read is at least its duration x 1000 / FullReadMillicores old (at most an hour),
	// and otherwise probes: the fixed rules, the VIPs, the set member counts and the real
	// servers of 64 virtual servers, reading everything at once when anything differs.
	// Small clusters read everything every syncPeriod. Default: 5 (half a percent of one
	// CPU). 1000: every resync reads everything.
	FullReadMillicores *int32 `json:"fullReadMillicores,omitempty"`
	// IPVS holds the IPVS-specific settings.
	IPVS IPVSConfiguration `json:"ipvs,omitempty"`
	// NodePortAddresses restricts NodePorts (and healthCheckNodePort listeners) to the
	// addresses of the host's links within these CIDRs, read again before every full sync;
	// a loopback address only for a loopback CIDR; none when no address matches. Empty:
	// NodePorts on the Node's primary address of each family, health checks on every address.
	// An IPv4 loopback CIDR sets route_localnet=1, only with the rule that drops packets to
	// 127.0.0.0/8 from other sources, and turns it back when the CIDR goes (kube-proxy's
	// ipvs mode leaves loopback out silently; a loopback NodePort answers only local
	// clients bound to a node address: IPVS never forwards a 127.x source to a pod).
	NodePortAddresses []string `json:"nodePortAddresses,omitempty"`
	// ExternalIPAllowedCIDRs lists the CIDRs Service externalIPs may come from. Empty: every
	// externalIP is accepted.
	ExternalIPAllowedCIDRs []string `json:"externalIPAllowedCIDRs,omitempty"`
	// DenyAllExternalIPs refuses every Service externalIP (CVE-2020-8554), for clusters
	// that do not use them; externalIPAllowedCIDRs must then be empty. Default: false.
	DenyAllExternalIPs bool `json:"denyAllExternalIPs,omitempty"`
	// LoadBalancerIngressAllowedCIDRs lists the CIDRs LoadBalancer ingress IPs
	// (status.loadBalancer.ingress[].ip) may come from. Empty: every ingress IP is accepted.
	LoadBalancerIngressAllowedCIDRs []string `json:"loadBalancerIngressAllowedCIDRs,omitempty"`
	// ServiceCIDRs are the ranges the cluster allocates ClusterIPs from (the API server's
	// --service-cluster-ip-range). No externalIP, LoadBalancer ingress IP or NodePort
	// address may lie inside them. Empty: only the ClusterIPs of the Services the proxier
	// knows are refused as such.
	ServiceCIDRs []string `json:"serviceCIDRs,omitempty"`
	// MetricsBindAddress is the host:port the /metrics endpoint listens on.
	// Default: 127.0.0.1:10249. A non-loopback address is refused unless
	// MetricsAllowNonLoopback is set.
	MetricsBindAddress string `json:"metricsBindAddress,omitempty"`
	// MetricsAllowNonLoopback explicitly allows a non-loopback MetricsBindAddress.
	MetricsAllowNonLoopback bool `json:"metricsAllowNonLoopback,omitempty"`
	// MetricsDisabled turns the /metrics server off (kube-proxy's documented
	// --metrics-bind-address=""); MetricsBindAddress must then be empty. Default: false.
	MetricsDisabled bool `json:"metricsDisabled,omitempty"`
	// MetricsServiceTraffic exports each Service port's traffic from the IPVS counters
	// (kubevs_service_{connections,packets_in,packets_out,bytes_in,bytes_out}_total), read at
	// every scrape. It costs five series per Service port on every node (50,000 at 10,000
	// Services, times the nodes, for Prometheus to store) and, per scrape, one dump of every
	// virtual server and memory for every series. Default: false.
	MetricsServiceTraffic bool `json:"metricsServiceTraffic,omitempty"`
	// EnableProfiling serves Go's runtime profiles at /debug/pprof/ on the metrics address
	// (kube-proxy's enableProfiling); it needs the metrics server. Default: false.
	EnableProfiling bool `json:"enableProfiling,omitempty"`
	// HealthzBindAddress is the host:port of /healthz, /livez and /readyz.
	// Default: 127.0.0.1:10256.
	HealthzBindAddress string `json:"healthzBindAddress,omitempty"`
	// NodeAPISocket is the unix socket the CNI plugin talks to.
	// Default: /run/kubevs/proxier.sock.
	NodeAPISocket string `json:"nodeAPISocket,omitempty"`
	// RegistrationDir holds the CNI plugin's pod registrations: they survive a proxier
	// restart, and should not survive a reboot (tmpfs). Default: /run/kubevs/registrations.
	RegistrationDir string `json:"registrationDir,omitempty"`
	// StateDir holds state that survives restarts and reboots (the sysctl values kubevs
	// changed, for --cleanup). Default: /var/lib/kubevs.
	StateDir string `json:"stateDir,omitempty"`
	// Conntrack sets the kernel's connection tracking limits and timeouts. Unset fields
	// leave the kernel's values as they are.
	Conntrack ConntrackConfiguration `json:"conntrack,omitempty"`
	// ClientConnection tunes the API client. Unset fields keep the defaults.
	ClientConnection ClientConnectionConfiguration `json:"clientConnection,omitempty"`
}

// ClientConnectionConfiguration tunes the proxier's API client.
type ClientConnectionConfiguration struct {
	// QPS and Burst bound the client's request rate. Default: 5 and 10 (client-go's).
	QPS   float32 `json:"qps,omitempty"`
	Burst int32   `json:"burst,omitempty"`
	// ContentType of requests: application/vnd.kubernetes.protobuf (the default) or
	// application/json.
	ContentType string `json:"contentType,omitempty"`
	// AcceptContentTypes is the Accept header. Default: protobuf, then JSON.
	AcceptContentTypes string `json:"acceptContentTypes,omitempty"`
}

// ConntrackConfiguration sets netfilter's connection tracking sysctls, with kube-proxy's
// meaning. Zero (or unset) leaves the kernel's value as it is.
type ConntrackConfiguration struct {
	// MaxPerCore sets net/netfilter/nf_conntrack_max to MaxPerCore times the number of
	// CPUs, but at least Min; a larger value already set is kept.
	MaxPerCore *int32 `json:"maxPerCore,omitempty"`
	// Min is the least nf_conntrack_max set with MaxPerCore.
	Min *int32 `json:"min,omitempty"`
	// TCPEstablishedTimeout sets nf_conntrack_tcp_timeout_established.
	TCPEstablishedTimeout metav1.Duration `json:"tcpEstablishedTimeout,omitempty"`
	// TCPCloseWaitTimeout sets nf_conntrack_tcp_timeout_close_wait.
	TCPCloseWaitTimeout metav1.Duration `json:"tcpCloseWaitTimeout,omitempty"`
	// TCPBeLiberal sets nf_conntrack_tcp_be_liberal=1 (out-of-window packets are not
	// marked INVALID).
	TCPBeLiberal bool `json:"tcpBeLiberal,omitempty"`
	// UDPTimeout sets nf_conntrack_udp_timeout (unreplied flows).
	UDPTimeout metav1.Duration `json:"udpTimeout,omitempty"`
	// UDPStreamTimeout sets nf_conntrack_udp_timeout_stream (assured flows).
	UDPStreamTimeout metav1.Duration `json:"udpStreamTimeout,omitempty"`
}

// ConntrackTimeout is one conntrack timeout of a ConntrackConfiguration: its field name in the
// file and the netfilter sysctl it sets (under net/netfilter/).
type ConntrackTimeout struct {
	Field  string
	Sysctl string
	Value  time.Duration
}

// Timeouts lists c's conntrack timeouts, zero ones included, in a fixed order: the one table
// the validation (field paths) and the daemon (sysctl names) both read.
func (c ConntrackConfiguration) Timeouts() []ConntrackTimeout {
	return []ConntrackTimeout{
		{"tcpEstablishedTimeout", "nf_conntrack_tcp_timeout_established", c.TCPEstablishedTimeout.Duration},
		{"tcpCloseWaitTimeout", "nf_conntrack_tcp_timeout_close_wait", c.TCPCloseWaitTimeout.Duration},
		{"udpTimeout", "nf_conntrack_udp_timeout", c.UDPTimeout.Duration},
		{"udpStreamTimeout", "nf_conntrack_udp_timeout_stream", c.UDPStreamTimeout.Duration},
	}
}

// IPVSConfiguration holds the IPVS-specific settings.
type IPVSConfiguration struct {
	// TCPTimeout, TCPFinTimeout and UDPTimeout set the kernel's IPVS connection timeouts.
	// Zero leaves the kernel's value unchanged.
	TCPTimeout    metav1.Duration `json:"tcpTimeout,omitempty"`
	TCPFinTimeout metav1.Duration `json:"tcpFinTimeout,omitempty"`
	UDPTimeout    metav1.Duration `json:"udpTimeout,omitempty"`
	// ExcludeCIDRs are virtual server addresses the proxier never deletes, even at cleanup.
	ExcludeCIDRs []string `json:"excludeCIDRs,omitempty"`
	// StrictARP keeps the node from answering ARP for the VIPs on kube-ipvs0
	// (arp_ignore=1, arp_announce=2). Default: true.
	StrictARP *bool `json:"strictARP,omitempty"`
	// GracefulTerminationPeriod is how long a removed real server stays with weight 0 to
	// drain its connections before it is deleted. Default: 60s. Zero deletes at once.
	GracefulTerminationPeriod *metav1.Duration `json:"gracefulTerminationPeriod,omitempty"`
}

// Decode decodes a configuration file strictly (unknown or duplicate fields are errors,
// field names are case-sensitive), applies the defaults and validates the result.
func Decode(data []byte) (*Configuration, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("decode configuration: %w", err)
	}
	var c Configuration
	strict, err := sigsjson.UnmarshalStrict(js, &c, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("decode configuration: %w", err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("decode configuration: %w", joinStrict(strict))
	}
	SetDefaults(&c)
	if errs := Validate(&c); len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration: %w", errs.ToAggregate())
	}
	return &c, nil
}

// Load reads and decodes the configuration file at path (see Decode).
func Load(path string) (*Configuration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration %s: %w", path, err)
	}
	c, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return c, nil
}

// New returns the default configuration, for a proxier started without a file.
func New() *Configuration {
	c := &Configuration{APIVersion: APIVersion, Kind: Kind}
	SetDefaults(c)
	return c
}

// ParsedCIDRs parses CIDRs that Validate accepted; invalid entries are dropped.
func ParsedCIDRs(cidrs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range cidrs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// StrictARPEnabled reports the defaulted StrictARP setting.
func (c *IPVSConfiguration) StrictARPEnabled() bool { return c.StrictARP == nil || *c.StrictARP }
