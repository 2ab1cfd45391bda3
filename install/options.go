// Package install is kubevs-install: it puts the kubevs binaries into the node's CNI bin
// directory, the kubevs conflist (standalone or chained into the network already there) into
// the CNI configuration directory, and a kubeconfig for the proxier and kubevs-ipam next to
// kubevs's state, all atomically; keeps them in place while it runs; and removes exactly what
// it added on uninstall.
//
// Every path in Options is a path on the node (it is what the runtime and the plugins see);
// the installer reaches it under Root, where the node's file system is mounted ("/host" in
// the DaemonSet, "/" when run on the node itself, a temporary directory in tests).
package install

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubevs/kubevs/conflist"
)

// Modes of the conflist.
const (
	// ModeStandalone writes a complete network: bridge + kubevs-ipam, portmap, kubevs.
	ModeStandalone = "standalone"
	// ModeChained appends kubevs to the network the runtime uses today.
	ModeChained = "chained"
)

// Defaults of Options.
const (
	DefaultSourceDir     = "/opt/kubevs/bin"
	DefaultBinDir        = "/opt/cni/bin"
	DefaultConfDir       = "/etc/cni/net.d"
	DefaultKubeconfig    = "/var/lib/kubevs/kubeconfig"
	DefaultStateFile     = "/var/lib/kubevs/install-state.json"
	DefaultProxierConfig = "/var/lib/kubevs/proxier.yaml"
	DefaultTokenFile     = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultCAFile        = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	DefaultPollInterval  = 2 * time.Second
)

// DefaultBinaries are the binaries installed into the CNI bin directory. kubevs-proxier is
// among them so that the plugin can launch it where no DaemonSet runs it.
var DefaultBinaries = []string{"kubevs", "kubevs-ipam", "kubevs-proxier"}

// Options configure an installation.
type Options struct {
	// Root is where the node's file system is mounted in the installer's view.
	Root string
	// SourceDir holds the binaries to install, in the installer's own view (not under Root).
	SourceDir string
	// Binaries are the file names copied from SourceDir to BinDir.
	Binaries []string
	// BinDir and ConfDir are the node's CNI directories.
	BinDir, ConfDir string
	// ConfName is the file name of kubevs's conflist; it must sort first in ConfDir.
	ConfName string
	// Mode is ModeStandalone or ModeChained.
	Mode string
	// Standalone shapes the standalone conflist (ModeStandalone).
	Standalone conflist.StandaloneOptions
	// Plugin is the kubevs stanza (both modes).
	Plugin conflist.PluginConf
	// LaunchProxier lets the plugin start BinDir/kubevs-proxier when nothing answers on its
	// socket (for nodes where no DaemonSet runs the proxier).
	LaunchProxier bool
	// ProxierConfigSource is a ProxierConfiguration file (installer's view) for the proxier the
	// plugin launches; empty: the defaults. With LaunchProxier, it is written to ProxierConfig
	// on the node, with kubeconfig and nodeName filled in when it leaves them out.
	ProxierConfigSource string
	// ProxierConfig is where that configuration is written on the node.
	ProxierConfig string
	// AllowInsecureBinDir installs even into a bin directory that is not root-owned or is
	// group- or world-writable. Such a directory lets anyone who can write it run code as
	// root through the runtime (the class of CVE-2023-27593).
	AllowInsecureBinDir bool
	// Kubeconfig is where the kubeconfig for the proxier and kubevs-ipam is written (mode
	// 0600); empty writes none.
	Kubeconfig string
	// APIServer is the API server's address ("https://10.0.0.1:6443" or "10.0.0.1:6443").
	// Empty: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT. On a node without
	// kube-proxy those must name the API server itself, not the kubernetes Service.
	APIServer string
	// TokenFile and CAFile are the service account's token and CA, in the installer's view.
	TokenFile, CAFile string
	// StateFile records what was installed, for uninstall and restore.
	StateFile string
	// PollInterval is how often Run checks that everything is still in place.
	PollInterval time.Duration
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
}

// Command is kubevs-install's command line: the options and what to do with them.
type Command struct {
	Options
	// Once installs and exits; Uninstall removes and exits; Probe reports whether the
	// installation is complete. None of them: install and keep in place (Run).
	Once, Uninstall, Probe bool
}

// AddFlags binds c's fields to flags of fs.
func (c *Command) AddFlags(fs *flag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.BoolVar(&c.Once, "once", false, "install once and exit instead of keeping everything in place")
	fs.BoolVar(&c.Uninstall, "uninstall", false, "remove what kubevs-install added and exit")
	fs.BoolVar(&c.Probe, "probe", false, "exit 0 if the installation is complete (a startup probe)")
}

// Run does what the command line asks until ctx ends.
func (c *Command) Run(ctx context.Context) error {
	if n := btoi(c.Once) + btoi(c.Uninstall) + btoi(c.Probe); n > 1 {
		return errors.New("--once, --uninstall and --probe exclude each other")
	}
	in, err := New(c.Options)
	if err != nil {
		return err
	}
	switch {
	case c.Probe:
		return in.Installed()
	case c.Uninstall:
		return in.Uninstall(ctx)
	case c.Once:
		return in.Install(ctx)
	}
	return in.Run(ctx)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AddFlags binds o's fields to flags of fs, with the defaults above.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Root, "root", "/", "where the node's file system is mounted")
	fs.StringVar(&o.SourceDir, "source-dir", DefaultSourceDir, "directory holding the binaries to install (installer's view)")
	fs.Func("binaries", "comma-separated binaries to install (default "+strings.Join(DefaultBinaries, ",")+")", func(s string) error {
		o.Binaries = strings.Split(s, ",")
		return nil
	})
	fs.StringVar(&o.BinDir, "bin-dir", DefaultBinDir, "the node's CNI bin directory")
	fs.StringVar(&o.ConfDir, "conf-dir", DefaultConfDir, "the node's CNI configuration directory")
	fs.StringVar(&o.ConfName, "conf-name", conflist.DefaultFileName, "file name of the kubevs conflist")
	fs.StringVar(&o.Mode, "mode", ModeStandalone, "standalone (bridge + kubevs-ipam + portmap + kubevs) or chained (append kubevs to the network already there)")
	fs.StringVar(&o.Standalone.CNIVersion, "cni-version", conflist.DefaultCNIVersion, "cniVersion of the standalone conflist")
	fs.StringVar(&o.Standalone.Bridge, "bridge", conflist.DefaultBridge, "bridge of the standalone conflist")
	fs.IntVar(&o.Standalone.MTU, "mtu", 0, "MTU of the standalone bridge (0: the bridge plugin's default)")
	fs.Func("pod-cidrs", "comma-separated static pod CIDRs for kubevs-ipam, used when neither the proxier nor the API server answers", func(s string) error {
		o.Standalone.IPAM.Ranges = strings.Split(s, ",")
		return nil
	})
	fs.StringVar(&o.Standalone.IPAM.NodeName, "node-name", "", "node name kubevs-ipam looks up (default: the host name)")
	fs.StringVar(&o.Plugin.LogFile, "plugin-log-file", "", "log file of the kubevs plugin on the node")
	fs.BoolVar(&o.LaunchProxier, "launch-proxier", false, "let the plugin start kubevs-proxier when none answers (nodes without the DaemonSet)")
	fs.StringVar(&o.ProxierConfigSource, "proxier-config-source", "", "ProxierConfiguration for the launched proxier (installer's view; default: defaults)")
	fs.StringVar(&o.ProxierConfig, "proxier-config", DefaultProxierConfig, "where the launched proxier's configuration is written")
	fs.BoolVar(&o.AllowInsecureBinDir, "allow-insecure-bin-dir", false, "install into a bin directory that is not root-owned or is group/world-writable (dangerous)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", DefaultKubeconfig, "where to write the kubeconfig for the proxier and kubevs-ipam (empty: none)")
	fs.StringVar(&o.APIServer, "api-server", "", "API server address (default: $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)")
	fs.StringVar(&o.TokenFile, "token-file", DefaultTokenFile, "service account token (installer's view)")
	fs.StringVar(&o.CAFile, "ca-file", DefaultCAFile, "service account CA bundle (installer's view)")
	fs.StringVar(&o.StateFile, "state-file", DefaultStateFile, "record of what was installed")
	fs.DurationVar(&o.PollInterval, "poll-interval", DefaultPollInterval, "how often to check that everything is in place")
}

// setDefaults fills unset fields.
func (o *Options) setDefaults() {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.SourceDir == "" {
		o.SourceDir = DefaultSourceDir
	}
	if o.Binaries == nil {
		o.Binaries = DefaultBinaries
	}
	if o.BinDir == "" {
		o.BinDir = DefaultBinDir
	}
	if o.ConfDir == "" {
		o.ConfDir = DefaultConfDir
	}
	if o.ConfName == "" {
		o.ConfName = conflist.DefaultFileName
	}
	if o.Mode == "" {
		o.Mode = ModeStandalone
	}
	if o.StateFile == "" {
		o.StateFile = DefaultStateFile
	}
	if o.ProxierConfig == "" {
		o.ProxierConfig = DefaultProxierConfig
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
}

// validate checks every path (absolute, clean, no "..") and name.
func (o *Options) validate() error {
	var errs []error
	for _, p := range []struct{ field, path string }{
		{"root", o.Root}, {"source-dir", o.SourceDir}, {"bin-dir", o.BinDir}, {"conf-dir", o.ConfDir}, {"state-file", o.StateFile},
	} {
		if err := conflist.ValidatePath(p.field, p.path); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range []struct{ field, path string }{
		{"kubeconfig", o.Kubeconfig}, {"token-file", o.TokenFile}, {"ca-file", o.CAFile},
		{"proxier-config-source", o.ProxierConfigSource}, {"proxier-config", o.ProxierConfig},
	} {
		if p.path != "" {
			if err := conflist.ValidatePath(p.field, p.path); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, b := range o.Binaries {
		if b == "" || b != filepath.Base(b) || b == "." || b == ".." {
			errs = append(errs, fmt.Errorf("binaries: %q is not a plain file name", b))
		}
	}
	if o.ConfName != filepath.Base(o.ConfName) || !strings.HasSuffix(o.ConfName, ".conflist") {
		errs = append(errs, fmt.Errorf("conf-name: %q must be a plain file name ending in .conflist", o.ConfName))
	}
	if o.Mode != ModeStandalone && o.Mode != ModeChained {
		errs = append(errs, fmt.Errorf("mode: %q, want %s or %s", o.Mode, ModeStandalone, ModeChained))
	}
	return errors.Join(errs...)
}

// host returns where the installer reaches the node path p.
func (o *Options) host(p string) string { return filepath.Join(o.Root, p) }
