package kubeproxy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kpv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	sigsjson "sigs.k8s.io/json"

	"github.com/kubevs/kubevs/proxier/config"
)

// kube-proxy's defaults where they differ from kubevs's (see the package comment).
const (
	DefaultHealthzBindAddress = "0.0.0.0:10256"
	DefaultMetricsBindAddress = "127.0.0.1:10249"
	healthzPort               = 10256
	metricsPort               = 10249
	// NodePortAddressPrimary is nodePortAddresses' special value: the Node's primary IPs.
	NodePortAddressPrimary = "primary"
)

var (
	// DefaultNodePortAddresses is kube-proxy's empty nodePortAddresses in kubevs's words:
	// every address of the host (loopback excluded, as in kube-proxy's ipvs mode).
	DefaultNodePortAddresses = []string{"0.0.0.0/0", "::/0"}

	defaultConntrackMaxPerCore  int32 = 32 * 1024
	defaultConntrackMin         int32 = 128 * 1024
	defaultConntrackEstablished       = 24 * time.Hour
	defaultConntrackCloseWait         = time.Hour
)

// topLevel holds the fields of kube-proxy's internal configuration that v1alpha1 keeps
// under each mode: honoured at the top level too, ipvs.* taking precedence.
type topLevel struct {
	SyncPeriod    *metav1.Duration `json:"syncPeriod"`
	MinSyncPeriod *metav1.Duration `json:"minSyncPeriod"`
}

func extensions(js []byte) (topLevel, error) {
	var t topLevel
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &t); err != nil {
		return t, fmt.Errorf("decode KubeProxyConfiguration: %w", err)
	}
	return t, nil
}

// Defaults returns the configuration of a kube-proxy in ipvs mode started without a file:
// kube-proxy's defaults, in kubevs's words, before flags apply.
func Defaults() (*config.Configuration, error) {
	return translate(&kpv1alpha1.KubeProxyConfiguration{Mode: "ipvs"}, topLevel{}, nil)
}

// translate turns a decoded (not defaulted) KubeProxyConfiguration into a defaulted and
// validated kubevs configuration. Errors name kube-proxy's field paths, or the names
// rename gives them (the flags' names).
func translate(kp *kpv1alpha1.KubeProxyConfiguration, ext topLevel, rename map[string]string) (*config.Configuration, error) {
	c := &config.Configuration{APIVersion: config.APIVersion, Kind: config.Kind}
	var errs field.ErrorList
	c.NodeName = strings.ToLower(strings.TrimSpace(kp.HostnameOverride))
	c.Kubeconfig = kp.ClientConnection.Kubeconfig
	c.ClientConnection = config.ClientConnectionConfiguration{
		QPS: kp.ClientConnection.QPS, Burst: kp.ClientConnection.Burst,
		ContentType: kp.ClientConnection.ContentType, AcceptContentTypes: kp.ClientConnection.AcceptContentTypes,
	}
	c.ClusterCIDRs = splitList(kp.ClusterCIDR)
	c.MasqueradeAll = kp.IPTables.MasqueradeAll
	c.Scheduler = kp.IPVS.Scheduler

	c.SyncPeriod.Duration = firstNonZero(kp.IPVS.SyncPeriod.Duration, durationOf(ext.SyncPeriod), config.DefaultSyncPeriod)
	c.MinSyncPeriod = &metav1.Duration{Duration: firstNonZero(kp.IPVS.MinSyncPeriod.Duration, durationOf(ext.MinSyncPeriod))}

	c.IPVS.TCPTimeout = kp.IPVS.TCPTimeout
	c.IPVS.TCPFinTimeout = kp.IPVS.TCPFinTimeout
	c.IPVS.UDPTimeout = kp.IPVS.UDPTimeout
	c.IPVS.ExcludeCIDRs = kp.IPVS.ExcludeCIDRs
	strict := kp.IPVS.StrictARP
	c.IPVS.StrictARP = &strict

	c.NodePortAddresses = nodePortAddresses(kp.NodePortAddresses)

	var err *field.Error
	if c.HealthzBindAddress, err = bindAddress(field.NewPath("healthzBindAddress"), kp.HealthzBindAddress, DefaultHealthzBindAddress, healthzPort); err != nil {
		errs = append(errs, err)
	}
	if c.MetricsBindAddress, err = bindAddress(field.NewPath("metricsBindAddress"), kp.MetricsBindAddress, DefaultMetricsBindAddress, metricsPort); err != nil {
		errs = append(errs, err)
	}
	// kube-proxy serves metrics on any address it is given.
	c.MetricsAllowNonLoopback = true
	c.EnableProfiling = kp.EnableProfiling

	ct := kp.Conntrack
	c.Conntrack = config.ConntrackConfiguration{
		MaxPerCore:            ptrOr(ct.MaxPerCore, defaultConntrackMaxPerCore),
		Min:                   ptrOr(ct.Min, defaultConntrackMin),
		TCPEstablishedTimeout: metav1.Duration{Duration: durationOr(ct.TCPEstablishedTimeout, defaultConntrackEstablished)},
		TCPCloseWaitTimeout:   metav1.Duration{Duration: durationOr(ct.TCPCloseWaitTimeout, defaultConntrackCloseWait)},
		TCPBeLiberal:          ct.TCPBeLiberal,
		UDPTimeout:            ct.UDPTimeout,
		UDPStreamTimeout:      ct.UDPStreamTimeout,
	}
	if len(errs) == 0 {
		config.SetDefaults(c)
		errs = config.Validate(c)
		for _, e := range errs {
			e.Field = kubeProxyPath(e.Field)
		}
	}
	if len(errs) > 0 {
		for _, e := range errs {
			e.Field = renamed(e.Field, rename)
		}
		return nil, fmt.Errorf("invalid KubeProxyConfiguration: %w", errs.ToAggregate())
	}
	return c, nil
}

// renamed looks up a path, without its list index, in rename.
func renamed(p string, rename map[string]string) string {
	head, rest := p, ""
	if i := strings.IndexByte(p, '['); i >= 0 {
		head, rest = p[:i], p[i:]
	}
	if n, ok := rename[head]; ok {
		return n + rest
	}
	return p
}

// nodePortAddresses maps kube-proxy's list: empty is every local address, "primary" is
// kubevs's own default (the Node's primary IPs).
func nodePortAddresses(l []string) []string {
	switch {
	case len(l) == 0:
		return append([]string(nil), DefaultNodePortAddresses...)
	case len(l) == 1 && l[0] == NodePortAddressPrimary:
		return nil
	}
	return append([]string(nil), l...)
}

// bindAddress applies kube-proxy's defaulting: empty is def, an IP without a port gets
// port. The result is host:port with a literal IP.
func bindAddress(p *field.Path, s, def string, port int) (string, *field.Error) {
	if s == "" {
		return def, nil
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, nil
	}
	ip, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return "", field.Invalid(p, s, "must be an IP address or IP:port")
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port)), nil
}

// kubevsToKubeProxy renames the paths of config.Validate's errors.
var kubevsToKubeProxy = map[string]string{
	"nodeName":      "hostnameOverride",
	"kubeconfig":    "clientConnection.kubeconfig",
	"clusterCIDRs":  "clusterCIDR",
	"masqueradeAll": "iptables.masqueradeAll",
	"scheduler":     "ipvs.scheduler",
	"syncPeriod":    "ipvs.syncPeriod",
	"minSyncPeriod": "ipvs.minSyncPeriod",
}

func kubeProxyPath(p string) string {
	head, rest := p, ""
	if i := strings.IndexAny(p, ".["); i >= 0 {
		head, rest = p[:i], p[i:]
	}
	if kp, ok := kubevsToKubeProxy[head]; ok {
		return kp + rest
	}
	return p
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func firstNonZero(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d != 0 {
			return d
		}
	}
	return 0
}

func durationOf(d *metav1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

func ptrOr(p *int32, def int32) *int32 {
	v := def
	if p != nil {
		v = *p
	}
	return &v
}
