package kubeproxy

// kube-proxy's flags on kubevs-proxier, with kube-proxy's precedence (checked against
// cmd/kube-proxy/app/options.go, v1.36): when --config names a file, the file is the whole
// configuration and every flag bound to a configuration field is ignored; only
// --hostname-override (and the logging flags) still apply over it. Without --config the
// flags apply over kube-proxy's defaults. kubevs keeps one difference for its own schema:
// --kubeconfig still replaces the file's kubeconfig, as it always did.

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"k8s.io/klog/v2"
	kpv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"

	"github.com/kubevs/kubevs/proxier/config"
)

// Flags holds kube-proxy's flags that kubevs-proxier honours.
type Flags struct {
	ProxyMode          string
	Scheduler          string
	SyncPeriod         time.Duration
	MinSyncPeriod      time.Duration
	ExcludeCIDRs       string
	StrictARP          bool
	MasqueradeAll      bool
	ClusterCIDR        string
	NodePortAddresses  string
	HealthzBindAddress string
	MetricsBindAddress string
	Profiling          bool
	Version            bool

	set []string // names of the configuration flags given, in flag order
}

// configFlags are the flags bound to a configuration field (ignored with --config).
var configFlags = []string{
	"proxy-mode", "ipvs-scheduler", "ipvs-sync-period", "ipvs-min-sync-period", "ipvs-exclude-cidrs",
	"ipvs-strict-arp", "masquerade-all", "cluster-cidr", "nodeport-addresses",
	"healthz-bind-address", "metrics-bind-address", "profiling",
}

// flagNames names the fields the flags set, for errors.
var flagNames = map[string]string{
	"mode":                   "--proxy-mode",
	"ipvs.scheduler":         "--ipvs-scheduler",
	"ipvs.syncPeriod":        "--ipvs-sync-period",
	"ipvs.minSyncPeriod":     "--ipvs-min-sync-period",
	"ipvs.excludeCIDRs":      "--ipvs-exclude-cidrs",
	"iptables.masqueradeAll": "--masquerade-all",
	"clusterCIDR":            "--cluster-cidr",
	"nodePortAddresses":      "--nodeport-addresses",
	"healthzBindAddress":     "--healthz-bind-address",
	"metricsBindAddress":     "--metrics-bind-address",
	"enableProfiling":        "--profiling",
}

// AddFlags registers kube-proxy's flags on fs.
func (f *Flags) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.ProxyMode, "proxy-mode", "", "kube-proxy's proxy mode: only ipvs (or empty) is accepted. Ignored with --config")
	fs.StringVar(&f.Scheduler, "ipvs-scheduler", "", "IPVS scheduler of Services that choose none (default rr). Ignored with --config")
	fs.DurationVar(&f.SyncPeriod, "ipvs-sync-period", 0, "maximum interval between full resyncs (default 30s). Ignored with --config")
	fs.DurationVar(&f.MinSyncPeriod, "ipvs-min-sync-period", 0, "minimum interval between syncs; 0 syncs at every change. Ignored with --config")
	fs.StringVar(&f.ExcludeCIDRs, "ipvs-exclude-cidrs", "", "comma-separated CIDRs of virtual servers kubevs never deletes. Ignored with --config")
	fs.BoolVar(&f.StrictARP, "ipvs-strict-arp", false, "set arp_ignore=1 and arp_announce=2. Ignored with --config")
	fs.BoolVar(&f.MasqueradeAll, "masquerade-all", false, "masquerade all traffic sent to Service IPs. Ignored with --config")
	fs.StringVar(&f.ClusterCIDR, "cluster-cidr", "", "pod CIDRs of the cluster, comma-separated, at most one per family. Ignored with --config")
	fs.StringVar(&f.NodePortAddresses, "nodeport-addresses", "", "comma-separated CIDRs NodePorts are served on, or 'primary' (default: every local address). Ignored with --config")
	fs.StringVar(&f.HealthzBindAddress, "healthz-bind-address", "", "IP:port of /healthz and /livez (default 0.0.0.0:10256). Ignored with --config")
	fs.StringVar(&f.MetricsBindAddress, "metrics-bind-address", "", "IP:port of /metrics (default 127.0.0.1:10249); empty turns the metrics server off. Ignored with --config")
	fs.BoolVar(&f.Profiling, "profiling", false, "serve Go's runtime profiles at /debug/pprof/ on the metrics address. Ignored with --config")
	fs.BoolVar(&f.Version, "version", false, "print the version and exit")
}

// Parsed records which configuration flags fs was given; call it after fs.Parse.
func (f *Flags) Parsed(fs *flag.FlagSet) {
	f.set = nil
	fs.Visit(func(fl *flag.Flag) {
		if slices.Contains(configFlags, fl.Name) {
			f.set = append(f.set, fl.Name)
		}
	})
}

// Given reports whether any configuration flag was given.
func (f *Flags) Given() bool { return len(f.set) > 0 }

// checkMode refuses a proxy mode other than ipvs, with or without --config.
func (f *Flags) checkMode() error {
	if m := f.ProxyMode; m != "" && m != "ipvs" {
		return fmt.Errorf("--proxy-mode=%s: not supported: kubevs implements kube-proxy's ipvs mode only", m)
	}
	return nil
}

// metricsOff reports whether --metrics-bind-address was given empty: kube-proxy's help says
// "Set empty to disable". (kube-proxy v1.36.3 itself keeps 127.0.0.1:10249 then: its flag
// type drops an empty value, as `kube-proxy --metrics-bind-address="" --write-config-to=F`
// shows; kubevs keeps the documented word.) An empty metricsBindAddress in a file is
// defaulted, by kube-proxy and by kubevs: a file without the field keeps its metrics.
func (f *Flags) metricsOff() bool {
	return slices.Contains(f.set, "metrics-bind-address") && f.MetricsBindAddress == ""
}

// apply sets the given flags over kp.
func (f *Flags) apply(kp *kpv1alpha1.KubeProxyConfiguration) {
	for _, name := range f.set {
		switch name {
		case "proxy-mode":
			kp.Mode = kpv1alpha1.ProxyMode(f.ProxyMode)
		case "ipvs-scheduler":
			kp.IPVS.Scheduler = f.Scheduler
		case "ipvs-sync-period":
			kp.IPVS.SyncPeriod.Duration = f.SyncPeriod
		case "ipvs-min-sync-period":
			kp.IPVS.MinSyncPeriod.Duration = f.MinSyncPeriod
		case "ipvs-exclude-cidrs":
			kp.IPVS.ExcludeCIDRs = splitList(f.ExcludeCIDRs)
		case "ipvs-strict-arp":
			kp.IPVS.StrictARP = f.StrictARP
		case "masquerade-all":
			kp.IPTables.MasqueradeAll = f.MasqueradeAll
		case "cluster-cidr":
			kp.ClusterCIDR = f.ClusterCIDR
		case "nodeport-addresses":
			kp.NodePortAddresses = splitList(f.NodePortAddresses)
		case "healthz-bind-address":
			kp.HealthzBindAddress = f.HealthzBindAddress
		case "metrics-bind-address":
			kp.MetricsBindAddress = f.MetricsBindAddress
		case "profiling":
			kp.EnableProfiling = f.Profiling
		}
	}
}

// Options are kubevs-proxier's bootstrap inputs: --config, --kubeconfig,
// --hostname-override and kube-proxy's flags.
type Options struct {
	ConfigPath       string
	Kubeconfig       string
	HostnameOverride string
	Flags            Flags
}

// Bootstrap returns the validated configuration of o and the report of what was ignored.
//
//   - --config with a KubeProxyConfiguration: the file, translated (see Decode); every
//     configuration flag and --kubeconfig ignored, as kube-proxy does.
//   - --config with a ProxierConfiguration: kubevs's file; --kubeconfig applies over it;
//     kube-proxy's configuration flags are ignored.
//   - no --config, some of kube-proxy's configuration flags: kube-proxy's defaults with
//     the flags over them: a kube-proxy command line starts kubevs unchanged.
//   - no --config, none of them: kubevs's defaults.
//
// --hostname-override applies in every case (trimmed, lowercased); --proxy-mode other than
// ipvs is always refused.
func Bootstrap(o Options) (*config.Configuration, Report, error) {
	if err := o.Flags.checkMode(); err != nil {
		return nil, nil, err
	}
	var (
		c   *config.Configuration
		rep Report
		err error
	)
	kubeconfig := o.Kubeconfig
	switch {
	case o.ConfigPath != "":
		var isKP bool
		if c, rep, isKP, err = loadAny(o.ConfigPath); err != nil {
			return nil, rep, err
		}
		for _, name := range o.Flags.set {
			rep = append(rep, Finding{Path: "--" + name, Verdict: Ignored, Reason: "--config is given: the file wins, as with kube-proxy"})
		}
		if isKP && kubeconfig != "" {
			rep = append(rep, Finding{Path: "--kubeconfig", Verdict: Ignored, Reason: "--config is given: the file's clientConnection.kubeconfig wins, as with kube-proxy"})
			kubeconfig = ""
		}
	case o.Flags.Given():
		kp := kpv1alpha1.KubeProxyConfiguration{Mode: "ipvs"}
		o.Flags.apply(&kp)
		if c, err = translate(&kp, topLevel{}, flagNames); err != nil {
			return nil, nil, err
		}
		if o.Flags.metricsOff() {
			c.MetricsBindAddress, c.MetricsDisabled = "", true
		}
	default:
		c = config.New()
	}
	if kubeconfig != "" {
		c.Kubeconfig = kubeconfig
	}
	if o.HostnameOverride != "" {
		h := strings.ToLower(strings.TrimSpace(o.HostnameOverride))
		if h == "" {
			return nil, rep, fmt.Errorf("--hostname-override: empty (only spaces) is invalid")
		}
		c.NodeName = h
	}
	if errs := config.Validate(c); len(errs) > 0 {
		return nil, rep, fmt.Errorf("invalid configuration: %w", errs.ToAggregate())
	}
	return c, rep, nil
}

// loadAny loads the file at path as a KubeProxyConfiguration or as kubevs's
// ProxierConfiguration, told apart by apiVersion and kind.
func loadAny(path string) (*config.Configuration, Report, bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, false, fmt.Errorf("read configuration %s: %w", path, err)
	}
	if !IsKubeProxyConfiguration(data) {
		c, err := config.Decode(data)
		if err != nil {
			return nil, nil, false, fmt.Errorf("load %s: %w", path, err)
		}
		return c, nil, false, nil
	}
	c, rep, err := Decode(data)
	if err != nil {
		return nil, rep, true, fmt.Errorf("load %s: %w", path, err)
	}
	return c, rep, true, nil
}

// Log writes one line per finding.
func (r Report) Log(logger klog.Logger) {
	for _, f := range r {
		logger.Info("Warning: configuration field not honoured", "field", f.Path, "verdict", f.Verdict, "reason", f.Reason)
	}
}

// Version returns the version of the running binary, as the Go toolchain recorded it.
func Version() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return "kubevs-proxier " + v
}
