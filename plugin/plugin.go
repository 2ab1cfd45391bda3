package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// ErrPluginNotAvailable is the CNI error code STATUS returns while the proxier is not ready.
const ErrPluginNotAvailable uint = 50

// API is the part of the node API the plugin uses; *nodeapi.Client implements it.
type API interface {
	Status(ctx context.Context) (nodeapi.Status, error)
	Register(ctx context.Context, r nodeapi.Registration) error
	Unregister(ctx context.Context, a nodeapi.Attachment) error
	Get(ctx context.Context, a nodeapi.Attachment) (nodeapi.Registration, error)
	GC(ctx context.Context, valid []nodeapi.Attachment) ([]nodeapi.Registration, error)
}

var _ API = (*nodeapi.Client)(nil)

// Plugin runs the CNI verbs. The zero value is not usable: use New, or fill every field (tests
// put fakes in them).
type Plugin struct {
	// Links reads pod links and sets hairpin.
	Links Links
	// NewAPI returns a node API client for cfg.
	NewAPI func(cfg *Config) API
	// Launch starts the proxier (under its supervisor) when nothing answers on the socket; it
	// must not wait for the proxier to answer.
	Launch func(ctx context.Context, cfg *Config, cniPath string) error
	// Stderr receives logs when the config names no log file.
	Stderr io.Writer
}

// New returns the plugin with its real dependencies.
func New() *Plugin {
	return &Plugin{
		Links: NetlinkLinks{},
		NewAPI: func(cfg *Config) API {
			c := nodeapi.NewClient(cfg.Socket)
			c.Timeout = time.Duration(cfg.Timeouts.API)
			return c
		},
		Launch: LaunchSupervisor,
		Stderr: os.Stderr,
	}
}

// VersionInfo lists SupportedVersions for skel.
func VersionInfo() version.PluginInfo { return version.PluginSupports(SupportedVersions...) }

// Funcs returns the verbs for skel.PluginMainFuncs. ADD prints its result to stdout; nothing
// else ever writes to stdout.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{
		Add: func(args *skel.CmdArgs) error {
			return p.run(args, "ADD", func(ctx context.Context, cfg *Config) error {
				res, err := p.Add(ctx, cfg, args)
				if err != nil {
					return err
				}
				return types.PrintResult(res, cfg.CNIVersion)
			})
		},
		Del: func(args *skel.CmdArgs) error {
			return p.run(args, "DEL", func(ctx context.Context, cfg *Config) error { return p.Del(ctx, cfg, args) })
		},
		Check: func(args *skel.CmdArgs) error {
			return p.run(args, "CHECK", func(ctx context.Context, cfg *Config) error { return p.Check(ctx, cfg, args) })
		},
		GC: func(args *skel.CmdArgs) error {
			return p.run(args, "GC", func(ctx context.Context, cfg *Config) error { return p.GC(ctx, cfg, args) })
		},
		Status: func(args *skel.CmdArgs) error {
			return p.run(args, "STATUS", func(ctx context.Context, cfg *Config) error { return p.Status(ctx, cfg, args) })
		},
	}
}

// run parses the config, sets up logging and calls fn.
func (p *Plugin) run(args *skel.CmdArgs, verb string, fn func(ctx context.Context, cfg *Config) error) error {
	cfg, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	logger, closeLog := p.logger(cfg)
	defer closeLog()
	ctx := klog.NewContext(context.Background(), logger)
	start := time.Now()
	err = fn(ctx, cfg)
	logger.V(2).Info("CNI verb done", "verb", verb, "containerID", args.ContainerID, "ifName", args.IfName, "duration", time.Since(start), "err", err)
	return err
}

func (p *Plugin) logger(cfg *Config) (logr.Logger, func()) {
	out, closeFn := p.Stderr, func() {}
	if out == nil {
		out = io.Discard
	}
	if cfg.LogFile != "" {
		if f, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600); err == nil {
			out, closeFn = f, func() { _ = f.Close() }
		}
	}
	l := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(out), textlogger.Verbosity(cfg.LogLevel)))
	return l.WithName("kubevs").WithValues("pid", os.Getpid()), closeFn
}

func validateArgs(args *skel.CmdArgs) error {
	if err := utils.ValidateContainerID(args.ContainerID); err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_CONTAINERID: "+err.Msg, "")
	}
	if err := utils.ValidateInterfaceName(args.IfName); err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_IFNAME: "+err.Msg, "")
	}
	return nil
}

// Add sets hairpin on the pod's bridge port and registers the pod with the proxier; it returns
// the prevResult unchanged. Nothing is changed before every input has been validated, and a
// slow or absent proxier never fails it.
func (p *Plugin) Add(ctx context.Context, cfg *Config, args *skel.CmdArgs) (types.Result, error) {
	logger := klog.FromContext(ctx)
	if err := validateArgs(args); err != nil {
		return nil, err
	}
	if args.Netns == "" {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_NETNS: missing", "")
	}
	pod, err := ParseArgs(args.Args)
	if err != nil {
		return nil, err
	}
	if cfg.PrevResult == nil {
		return nil, invalid("prevResult", "missing: kubevs is a chained plugin and must come after the main plugin")
	}
	prev, err := current.NewResultFromResult(cfg.PrevResult)
	if err != nil {
		return nil, invalid("prevResult", "%v", err)
	}
	pl, err := p.Links.Inspect(args.Netns, args.IfName)
	if err != nil {
		return nil, err
	}
	if pl.Bridge != "" {
		// Set without reading first: one netlink request, where reading the flag would dump
		// every bridge port; setting it again is a no-op.
		if err := p.Links.SetHairpin(pl.HostIfName); err != nil {
			return nil, err
		}
		logger.V(4).Info("Hairpin on", "port", pl.HostIfName, "bridge", pl.Bridge)
	}
	reg := nodeapi.Registration{
		ContainerID: args.ContainerID, IfName: args.IfName, Netns: args.Netns,
		PodNamespace: pod.Namespace, PodName: pod.Name, PodUID: pod.UID,
		IPs: podIPs(prev, args.IfName, pl.IPs), HostIfName: pl.HostIfName,
	}
	api := p.NewAPI(cfg)
	err = api.Register(ctx, reg)
	if nodeapi.NotListening(err) && cfg.Launch.Enabled && p.launchAndWait(ctx, cfg, api, args.Path) {
		err = api.Register(ctx, reg)
	}
	if err != nil {
		logger.Info("Could not register the pod with the proxier; it will learn it from EndpointSlices", "attachment", reg.Key(), "err", err)
	}
	return cfg.PrevResult, nil
}

// podIPs returns the prevResult addresses of the pod interface, or of the whole result when
// none names an interface, or the ones read from the kernel.
func podIPs(prev *current.Result, ifName string, fromKernel []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, ip := range prev.IPs {
		if ip.Interface != nil {
			i := *ip.Interface
			if i < 0 || i >= len(prev.Interfaces) || prev.Interfaces[i].Name != ifName || prev.Interfaces[i].Sandbox == "" {
				continue
			}
		}
		if a, ok := netip.AddrFromSlice(ip.Address.IP); ok {
			out = append(out, a.Unmap())
		}
	}
	if len(out) == 0 {
		return fromKernel
	}
	return out
}

// launchAndWait launches the proxier and polls for up to the launch timeout for it to answer.
func (p *Plugin) launchAndWait(ctx context.Context, cfg *Config, api API, cniPath string) bool {
	logger := klog.FromContext(ctx)
	if err := p.Launch(ctx, cfg, cniPath); err != nil {
		logger.Error(err, "Launch the proxier")
		return false
	}
	deadline := time.Now().Add(time.Duration(cfg.Timeouts.Launch))
	for delay := 10 * time.Millisecond; time.Now().Before(deadline); delay = min(2*delay, 200*time.Millisecond) {
		if _, err := api.Status(ctx); err == nil {
			return true
		}
		time.Sleep(min(delay, time.Until(deadline)))
	}
	logger.Info("Proxier launched but not answering yet; going on", "waited", time.Duration(cfg.Timeouts.Launch))
	return false
}

// Del unregisters (ContainerID, IfName). It needs no netns and no prevResult, never launches
// the proxier, and succeeds whatever the proxier says: the proxier GCs what it missed.
func (p *Plugin) Del(ctx context.Context, cfg *Config, args *skel.CmdArgs) error {
	if err := validateArgs(args); err != nil {
		return err
	}
	a := nodeapi.Attachment{ContainerID: args.ContainerID, IfName: args.IfName}
	if err := p.NewAPI(cfg).Unregister(ctx, a); err != nil {
		klog.FromContext(ctx).Info("Unregister pod from the proxier failed; GC will catch up", "attachment", a, "err", err)
	}
	return nil
}

// Check verifies that the pod interface exists, that its bridge port (if any) has hairpin on,
// and that the proxier holds its registration.
func (p *Plugin) Check(ctx context.Context, cfg *Config, args *skel.CmdArgs) error {
	if err := validateArgs(args); err != nil {
		return err
	}
	if cfg.PrevResult == nil {
		return invalid("prevResult", "missing: CHECK needs the result of the chain")
	}
	pl, err := p.Links.Inspect(args.Netns, args.IfName)
	if err != nil {
		return err
	}
	if pl.Bridge != "" {
		on, err := p.Links.Hairpin(pl.HostIfName)
		if err != nil {
			return err
		}
		if !on {
			return fmt.Errorf("bridge port %s of %s: hairpin is off", pl.HostIfName, pl.Bridge)
		}
	}
	a := nodeapi.Attachment{ContainerID: args.ContainerID, IfName: args.IfName}
	_, err = p.NewAPI(cfg).Get(ctx, a)
	switch {
	case errors.Is(err, nodeapi.ErrUnavailable):
		return types.NewError(types.ErrTryAgainLater, "kubevs-proxier does not answer on "+cfg.Socket, err.Error())
	case errors.Is(err, nodeapi.ErrNotFound):
		return fmt.Errorf("attachment %s is not registered with kubevs-proxier", a)
	case err != nil:
		return fmt.Errorf("get registration %s: %w", a, err)
	}
	return nil
}

// GC drops every registration not in cni.dev/valid-attachments. An absent proxier is not an
// error: it has nothing to collect until it runs, and the next GC reaches it.
func (p *Plugin) GC(ctx context.Context, cfg *Config, _ *skel.CmdArgs) error {
	valid := make([]nodeapi.Attachment, 0, len(cfg.ValidAttachments))
	for _, a := range cfg.ValidAttachments {
		valid = append(valid, nodeapi.Attachment{ContainerID: a.ContainerID, IfName: a.IfName})
	}
	removed, err := p.NewAPI(cfg).GC(ctx, valid)
	if errors.Is(err, nodeapi.ErrUnavailable) {
		klog.FromContext(ctx).Info("Proxier not answering; nothing to GC", "socket", cfg.Socket)
		return nil
	}
	if err != nil {
		return fmt.Errorf("gc registrations: %w", err)
	}
	klog.FromContext(ctx).V(2).Info("GC done", "removed", len(removed))
	return nil
}

// Status returns error 50 until the proxier answers and reports ready. When launch is enabled
// and nothing answers it launches the proxier (without waiting): the runtime asks STATUS before
// any pod exists, so waiting for an ADD to launch it would keep the node not ready forever.
// A proxier that is listening and has been ready but does not answer in time (a starved node,
// a long sync) is reported available: ADD works without it (it registers the pod later), and
// turning the node NotReady would stop every pod from starting.
func (p *Plugin) Status(ctx context.Context, cfg *Config, args *skel.CmdArgs) error {
	st, err := p.NewAPI(cfg).Status(ctx)
	if err != nil {
		if nodeapi.NotListening(err) && cfg.Launch.Enabled {
			if lerr := p.Launch(ctx, cfg, args.Path); lerr != nil {
				klog.FromContext(ctx).Error(lerr, "Launch the proxier")
			}
		}
		if nodeapi.TimedOut(err) && nodeapi.WasReady(cfg.Socket) {
			klog.FromContext(ctx).Info("kubevs-proxier did not answer in time, but it has been ready since it started: available", "socket", cfg.Socket, "err", err)
			return nil
		}
		return types.NewError(ErrPluginNotAvailable, "kubevs-proxier does not answer on "+cfg.Socket, err.Error())
	}
	if !st.Ready {
		return types.NewError(ErrPluginNotAvailable, "kubevs-proxier is not ready", st.Message)
	}
	return nil
}
