package status

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// Command is the subcommand's name: `kubevs-proxier status`, also reached as `kubevs status`
// (the CNI binary execs kubevs-proxier to keep its own per-pod start-up lean).
const Command = "status"

// DefaultKubeconfig is where kubevs-install writes the kubeconfig of the node's kubevs
// binaries (install.DefaultKubeconfig; a test keeps the two equal).
const DefaultKubeconfig = "/var/lib/kubevs/kubeconfig"

// DefaultProxierConfig is where kubevs-install writes the configuration of the proxier the
// plugin launches (install.DefaultProxierConfig; a test keeps the two equal). Without
// --config, status reads it when it exists: the fixed rules depend on its clusterCIDRs, so
// the proxier's defaults would report a healthy node's masquerade rules as drift.
const DefaultProxierConfig = "/var/lib/kubevs/proxier.yaml"

// proxierConfigDefault is DefaultProxierConfig; a test points it elsewhere.
var proxierConfigDefault = DefaultProxierConfig

// Env holds what a status run reads: the API objects and the kernel adapters. Only the
// adapters' read-only methods are called.
type Env struct {
	API  Source
	IPVS ipvs.Interface
	Link link.Interface
	// IPSet and Netfilter read kubevs's sets and rules for their drift; nil: not checked.
	IPSet     ipset.Interface
	Netfilter netfilter.Interface
	// HostAddresses lists the node's addresses, read only when the configuration has
	// nodePortAddresses (derive.HostAddresses in production); nil: none.
	HostAddresses func() ([]netip.Addr, error)
	// Close releases the adapters; may be nil.
	Close func()
	// StepTimeout bounds each kernel read (one dump, one iptables-save): a read that has not
	// answered by then fails the run with a *TimeoutError naming it. 0: DefaultStepTimeout.
	StepTimeout time.Duration
}

// Options are the parsed flags of `kubevs status`.
type Options struct {
	Kubeconfig string
	Node       string
	ConfigPath string
	Output     string
	// Timeout bounds the whole run (API requests and kernel reads).
	Timeout time.Duration
	// StepTimeout bounds each kernel read.
	StepTimeout time.Duration
}

// DefaultTimeout bounds a status run unless --timeout says otherwise.
const DefaultTimeout = 30 * time.Second

// Main runs `kubevs status` with args (the words after "status"), printing the report to
// stdout and errors to stderr, and returns the exit code: ExitOK, ExitDrift or ExitError.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	code := mainWith(ctx, args, stdout, stderr, os.Getenv, openEnv)
	if code == ExitError {
		// A read that timed out is abandoned, not ended: end the tool behind it too.
		killChildren()
	}
	return code
}

// opener builds the Env from the API client configuration.
type opener func(*rest.Config) (Env, error)

func mainWith(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, open opener) int {
	opts, err := ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "kubevs status: %v\n", err)
		return ExitError
	}
	code, err := run(ctx, opts, stdout, getenv, open)
	if te := (*TimeoutError)(nil); errors.As(err, &te) {
		err = te // the check's name says it all; the callers' wrapping would repeat it
	}
	if err != nil {
		fmt.Fprintf(stderr, "kubevs status: %v\n", err)
		return ExitError
	}
	return code
}

func run(ctx context.Context, opts Options, stdout io.Writer, getenv func(string) string, open opener) (int, error) {
	if opts.Output != FormatTable && opts.Output != FormatJSON {
		return ExitError, fmt.Errorf("unknown output format %q (want %s or %s)", opts.Output, FormatTable, FormatJSON)
	}
	cfg := config.New()
	path := opts.ConfigPath
	if path == "" && fileExists(proxierConfigDefault) {
		path = proxierConfigDefault
	}
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return ExitError, err
		}
	}
	node := opts.Node
	if node == "" {
		node = cfg.NodeName
	}
	if node == "" {
		return ExitError, errors.New("no node name: pass --node")
	}
	rc, err := RESTConfig(opts.Kubeconfig, getenv("KUBECONFIG"), cfg.Kubeconfig, fileExists)
	if err != nil {
		return ExitError, err
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	rd, err := newReader(ctx, opts.StepTimeout)
	if err != nil {
		return ExitError, err
	}
	defer rd.close()
	// Opening runs `iptables --version` and opens netlink sockets: it is a check like the reads.
	env, err := get(rd, "open the kernel adapters", func() (Env, error) { return open(rc) })
	if err != nil {
		return ExitError, err
	}
	if env.Close != nil {
		defer env.Close()
	}
	r, err := runWith(ctx, rd, node, cfg, env)
	if err != nil {
		return ExitError, err
	}
	if err := Write(stdout, r, opts.Output); err != nil {
		return ExitError, err
	}
	if len(r.Drift) > 0 {
		return ExitDrift, nil
	}
	return ExitOK, nil
}

// ParseFlags parses the flags of `kubevs status`; usage and flag errors go to stderr.
func ParseFlags(args []string, stderr io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("kubevs status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else the configuration's kubeconfig, else "+DefaultKubeconfig+", else in-cluster)")
	fs.StringVar(&o.Node, "node", "", "name of this Node (default: the configuration's nodeName, else the host name)")
	fs.StringVar(&o.ConfigPath, "config", "", "the proxier's ProxierConfiguration file (scheduler, cluster CIDRs, nodePortAddresses, externalIPAllowedCIDRs, excludeCIDRs); default: "+DefaultProxierConfig+" when it exists, else the proxier's defaults")
	fs.StringVar(&o.Output, "o", FormatTable, "output format: table or json")
	fs.StringVar(&o.Output, "output", FormatTable, "alias of -o")
	fs.DurationVar(&o.Timeout, "timeout", DefaultTimeout, "give up (exit 2) after this long; 0: never")
	fs.DurationVar(&o.StepTimeout, "step-timeout", DefaultStepTimeout, "give up (exit 2, naming the check) when one kernel read (a netlink dump, an iptables-save) has not answered after this long")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: kubevs status [--kubeconfig PATH] [--node NAME] [--config FILE] [-o table|json] [--timeout 30s] [--step-timeout 10s]\n\n"+
			"Prints the node's IPVS virtual servers by Kubernetes Service, with real servers, weights and\n"+
			"connection counts, and the drift between the kernel and what the API server asks for.\n"+
			"Reads only; never changes the kernel. Exit status: 0 no drift, 1 drift, 2 error.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.StepTimeout <= 0 {
		return Options{}, fmt.Errorf("--step-timeout %s: must be positive", o.StepTimeout)
	}
	return o, nil
}

// RESTConfig finds the API server: the --kubeconfig flag, else $KUBECONFIG (a list, as
// kubectl reads it), else the proxier configuration's kubeconfig, else DefaultKubeconfig
// when it exists (exists is os.Stat in production), else the in-cluster configuration.
func RESTConfig(flagPath, envPath, cfgPath string, exists func(string) bool) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{}
	switch {
	case flagPath != "":
		rules.ExplicitPath = flagPath
	case envPath != "":
		rules.Precedence = filepath.SplitList(envPath)
	case cfgPath != "":
		rules.ExplicitPath = cfgPath
	case exists(DefaultKubeconfig):
		rules.ExplicitPath = DefaultKubeconfig
	default:
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no kubeconfig (--kubeconfig, $KUBECONFIG, the configuration's kubeconfig, %s) and not in a cluster: %w", DefaultKubeconfig, err)
		}
		return withUserAgent(rc), nil
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", describe(rules), err)
	}
	return withUserAgent(rc), nil
}

func describe(r *clientcmd.ClientConfigLoadingRules) string {
	if r.ExplicitPath != "" {
		return r.ExplicitPath
	}
	return fmt.Sprintf("%q", r.Precedence)
}

func withUserAgent(rc *rest.Config) *rest.Config {
	rc.UserAgent = "kubevs-status"
	return rc
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
