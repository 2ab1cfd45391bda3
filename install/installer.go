package install

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/conflist"
	"github.com/kubevs/kubevs/install/atomicfile"
)

// State records what the installer put on the node, so that uninstall removes exactly that.
// Paths are node paths.
type State struct {
	// Binaries maps each installed binary to the SHA-256 of what was written.
	Binaries map[string]string `json:"binaries,omitempty"`
	// Conflist is the conflist written; ChainedFrom the file it was chained from, if any.
	Conflist    string `json:"conflist,omitempty"`
	ChainedFrom string `json:"chainedFrom,omitempty"`
	// Kubeconfig is the kubeconfig written, if any.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// ProxierConfig is the configuration written for a launched proxier, if any.
	ProxierConfig string `json:"proxierConfig,omitempty"`
}

// Installer installs kubevs on one node. Its methods are not safe for concurrent use.
type Installer struct {
	o     Options
	state State
	// seen caches, per installed binary, the file identity found right after the last check,
	// so that polling does not hash tens of megabytes every few seconds.
	seen map[string]fileID
}

// New validates o (after defaults) and returns an installer.
func New(o Options) (*Installer, error) {
	o.setDefaults()
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	return &Installer{o: o}, nil
}

// ErrWaiting is returned by Install in chained mode while the node has no network to chain
// into yet (the network add-on has not written its configuration). Run keeps polling.
var ErrWaiting = errors.New("waiting for a CNI network to chain into")

// Install puts everything in place once. It is idempotent: what is already right is not
// rewritten. The conflist is written last, so the runtime never sees a network whose binaries
// are missing.
func (in *Installer) Install(ctx context.Context) (err error) {
	if err := in.loadState(); err != nil {
		return err
	}
	before := in.state
	before.Binaries = maps.Clone(in.state.Binaries)
	// Record whatever was put in place, also when a later step fails, so that uninstall
	// finds it.
	defer func() {
		if serr := in.saveState(before); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	if err := in.installBinaries(ctx); err != nil {
		return err
	}
	if err := in.installKubeconfig(ctx); err != nil {
		return err
	}
	if err := in.installProxierConfig(ctx); err != nil {
		return err
	}
	if err := in.installConflist(ctx); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Installation in place", "conflist", in.state.Conflist, "mode", in.o.Mode)
	return nil
}

// Run installs, then checks every PollInterval that everything is still in place (a removed
// or overwritten conflist or binary is restored, a rotated token rewritten, a changed network
// to chain into followed) until ctx ends. Failures are logged and retried.
func (in *Installer) Run(ctx context.Context) error {
	log := klog.FromContext(ctx)
	t := time.NewTicker(in.o.PollInterval)
	defer t.Stop()
	var last string
	for {
		err := in.Install(ctx)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != last {
			if err != nil {
				log.Error(err, "Installation not in place; retrying", "every", in.o.PollInterval)
			} else {
				log.Info("Installation in place", "conflist", in.state.Conflist, "mode", in.o.Mode, "binaries", len(in.state.Binaries))
			}
			last = msg
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Installed reports (nil) whether the last Install completed: the state file names a conflist
// that exists. It is what the DaemonSet's startup probe runs.
func (in *Installer) Installed() error {
	if err := in.loadState(); err != nil {
		return err
	}
	if in.state.Conflist == "" {
		return errors.New("not installed yet")
	}
	if _, err := os.Stat(in.o.host(in.state.Conflist)); err != nil {
		return fmt.Errorf("conflist: %w", err)
	}
	return nil
}

// Uninstall removes what Install added: the conflist first (so the runtime goes back to the
// network it used before, whose file was never touched), then the kubeconfig, then every
// binary still holding what was installed (a binary replaced since is left alone).
func (in *Installer) Uninstall(ctx context.Context) error {
	log := klog.FromContext(ctx)
	if err := in.loadState(); err != nil {
		return err
	}
	var errs []error
	conf := in.state.Conflist
	if conf == "" {
		conf = filepath.Join(in.o.ConfDir, in.o.ConfName)
	}
	owned := in.owned(log)
	if owned(conf) {
		if err := atomicfile.Remove(in.o.host(conf)); err != nil {
			errs = append(errs, err)
		}
	}
	var kubeconfigToken string
	if in.state.Kubeconfig != "" {
		kubeconfigToken = in.state.Kubeconfig + ".token"
	}
	for _, p := range []string{kubeconfigToken, in.state.Kubeconfig, in.state.ProxierConfig} {
		if p == "" || !owned(p) {
			continue
		}
		if err := atomicfile.Remove(in.o.host(p)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range sortedKeys(in.state.Binaries) {
		if !owned(p) {
			continue
		}
		sum, err := fileSum(in.o.host(p))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			errs = append(errs, err)
		case sum != in.state.Binaries[p]:
			log.Info("Leaving a binary replaced since kubevs installed it", "path", p)
		default:
			if err := atomicfile.Remove(in.o.host(p)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		if err := atomicfile.Remove(in.o.host(in.o.StateFile)); err != nil {
			errs = append(errs, err)
		}
		in.state = State{}
		log.Info("Uninstalled", "conflist", conf)
	}
	return errors.Join(errs...)
}

// owned returns a check that a node path read from the state file is one the installer
// itself writes with its options: the conflist ConfDir/ConfName, the Kubeconfig, the
// ProxierConfig, or BinDir/<name> for a binary name it installs. The state file is on the
// node's disk and is not trusted: anything else it names is logged and left alone.
func (in *Installer) owned(log klog.Logger) func(string) bool {
	mine := map[string]bool{filepath.Join(in.o.ConfDir, in.o.ConfName): true}
	for _, p := range []string{in.o.Kubeconfig, in.o.ProxierConfig} {
		if p != "" {
			mine[filepath.Clean(p)] = true
		}
	}
	if in.o.Kubeconfig != "" {
		mine[filepath.Clean(in.o.hostTokenFile())] = true
	}
	for _, b := range append(slices.Clone(in.o.Binaries), DefaultBinaries...) {
		mine[filepath.Join(in.o.BinDir, b)] = true
	}
	return func(p string) bool {
		if mine[p] {
			return true
		}
		log.Info("Not removing a path the install state names but kubevs does not write", "path", p, "state", in.o.StateFile)
		return false
	}
}

func (in *Installer) installBinaries(ctx context.Context) error {
	binDir := in.o.host(in.o.BinDir)
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("create bin directory: %w", err)
	}
	if !in.o.AllowInsecureBinDir {
		if err := checkDirSafe(filepath.Clean(in.o.Root), binDir); err != nil {
			return fmt.Errorf("refuse to install: %w", err)
		}
	}
	if in.state.Binaries == nil {
		in.state.Binaries = map[string]string{}
	}
	if err := atomicfile.CleanupFor(binDir, in.o.Binaries...); err != nil {
		return err
	}
	for _, b := range in.o.Binaries {
		node := filepath.Join(in.o.BinDir, b)
		dst := in.o.host(node)
		if id, ok := statID(dst); ok && id == in.seen[node] && in.state.Binaries[node] != "" {
			continue
		}
		sum, changed, err := installBinary(filepath.Join(in.o.SourceDir, b), dst)
		if err != nil {
			return err
		}
		in.state.Binaries[node] = sum
		if id, ok := statID(dst); ok {
			if in.seen == nil {
				in.seen = map[string]fileID{}
			}
			in.seen[node] = id
		}
		if changed {
			klog.FromContext(ctx).Info("Installed binary", "path", node)
		}
	}
	return nil
}

func (in *Installer) installKubeconfig(ctx context.Context) error {
	if in.o.Kubeconfig == "" {
		return nil
	}
	data, token, err := in.o.renderKubeconfig()
	if err != nil {
		return err
	}
	path := in.o.host(in.o.Kubeconfig)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create kubeconfig directory: %w", err)
	}
	in.state.Kubeconfig = in.o.Kubeconfig
	// The token first: the kubeconfig that references it must never point at nothing.
	if tokenPath := in.o.host(in.o.hostTokenFile()); !same(tokenPath, token, 0o600) {
		if err := atomicfile.WriteFile(tokenPath, token, atomicfile.Options{Mode: 0o600}); err != nil {
			return fmt.Errorf("write token file: %w", err)
		}
		klog.FromContext(ctx).Info("Wrote the service account token", "path", in.o.hostTokenFile())
	}
	if same(path, data, 0o600) {
		return nil
	}
	if err := atomicfile.WriteFile(path, data, atomicfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	klog.FromContext(ctx).Info("Wrote kubeconfig", "path", in.o.Kubeconfig)
	return nil
}

// desiredConflist returns the conflist to write and, in chained mode, its source (node path).
func (in *Installer) desiredConflist() (*conflist.List, string, error) {
	plugin := in.o.Plugin
	if in.o.LaunchProxier {
		plugin.Launch = &conflist.LaunchConf{Enabled: true, ProxierBinary: filepath.Join(in.o.BinDir, "kubevs-proxier"), ConfigPath: in.o.ProxierConfig}
	}
	if in.o.Mode == ModeStandalone {
		so := in.o.Standalone
		so.Plugin = plugin
		if so.IPAM.Kubeconfig == "" {
			so.IPAM.Kubeconfig = in.o.Kubeconfig
		}
		l, err := conflist.Standalone(so)
		return l, "", err
	}
	confDir := in.o.host(in.o.ConfDir)
	src, err := conflist.FindExisting(confDir, in.o.ConfName)
	if errors.Is(err, conflist.ErrNoNetwork) {
		return nil, "", fmt.Errorf("%w: %s holds no configuration but kubevs's", ErrWaiting, in.o.ConfDir)
	}
	if err != nil {
		return nil, "", err
	}
	existing, err := conflist.Read(src)
	if err != nil {
		return nil, "", err
	}
	l, err := conflist.Chain(existing, plugin)
	return l, filepath.Join(in.o.ConfDir, filepath.Base(src)), err
}

func (in *Installer) installConflist(ctx context.Context) error {
	confDir := in.o.host(in.o.ConfDir)
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return fmt.Errorf("create CNI configuration directory: %w", err)
	}
	if err := atomicfile.CleanupFor(confDir, in.o.ConfName); err != nil {
		return err
	}
	if err := conflist.CheckFirst(confDir, in.o.ConfName); err != nil {
		return err
	}
	l, src, err := in.desiredConflist()
	if errors.Is(err, ErrWaiting) && in.state.ChainedFrom != "" && in.owned(klog.FromContext(ctx))(in.state.Conflist) {
		// The network kubevs was chained into is gone: so goes the chained copy, or the
		// runtime would keep running a network its owner removed.
		if rerr := atomicfile.Remove(in.o.host(in.state.Conflist)); rerr != nil {
			return errors.Join(err, rerr)
		}
		klog.FromContext(ctx).Info("Removed the chained conflist: its network is gone", "path", in.state.Conflist, "chainedFrom", in.state.ChainedFrom)
		in.state.Conflist, in.state.ChainedFrom = "", ""
	}
	if err != nil {
		return err
	}
	if err := in.checkPlugins(l); err != nil {
		return err
	}
	data, err := l.Marshal()
	if err != nil {
		return err
	}
	node := filepath.Join(in.o.ConfDir, in.o.ConfName)
	in.state.Conflist, in.state.ChainedFrom = node, src
	path := in.o.host(node)
	if same(path, data, 0o644) {
		return nil
	}
	if err := conflist.Write(path, l); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Wrote conflist", "path", node, "mode", in.o.Mode, "chainedFrom", src)
	return nil
}

// checkPlugins refuses to write a conflist whose plugins are not all in the bin directory: the
// runtime would fail every pod, while without the conflist the node stays NotReady and this
// error says why.
func (in *Installer) checkPlugins(l *conflist.List) error {
	var missing []string
	for _, typ := range l.Types() {
		if _, err := os.Stat(filepath.Join(in.o.host(in.o.BinDir), typ)); err != nil {
			missing = append(missing, typ)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %v not in %s (the reference plugins come with the kubernetes-cni or containernetworking-plugins package)", ErrMissingPlugins, missing, in.o.BinDir)
	}
	return nil
}

// ErrMissingPlugins is returned when the conflist names a plugin absent from the bin directory.
var ErrMissingPlugins = errors.New("CNI plugins missing")

// same reports whether path holds exactly data with mode perm.
func same(path string, data []byte, perm os.FileMode) bool {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != perm {
		return false
	}
	cur, err := os.ReadFile(path)
	return err == nil && bytes.Equal(cur, data)
}

func (in *Installer) loadState() error {
	b, err := os.ReadFile(in.o.host(in.o.StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read install state: %w", err)
	}
	var s State
	if err := conflist.DecodeStrict(b, &s); err != nil {
		return fmt.Errorf("decode install state %s: %w", in.o.StateFile, err)
	}
	in.state = s
	return nil
}

// saveState writes the state when it differs from before.
func (in *Installer) saveState(before State) error {
	if before.Conflist == in.state.Conflist && before.ChainedFrom == in.state.ChainedFrom &&
		before.Kubeconfig == in.state.Kubeconfig && before.ProxierConfig == in.state.ProxierConfig && maps.Equal(before.Binaries, in.state.Binaries) {
		if _, err := os.Stat(in.o.host(in.o.StateFile)); err == nil {
			return nil
		}
	}
	b, err := json.MarshalIndent(in.state, "", "  ")
	if err != nil {
		return fmt.Errorf("encode install state: %w", err)
	}
	path := in.o.host(in.o.StateFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), atomicfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("write install state: %w", err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
