package ipam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/conflist"
	"github.com/kubevs/kubevs/ipam/store"
)

// commandTimeout bounds one CNI command (range lookup included).
const commandTimeout = 20 * time.Second

// Plugin implements the CNI verbs of kubevs-ipam. The zero value (with Stdout set) uses the
// disk store, the real range sources and the host name.
type Plugin struct {
	// Stdout receives the result; nothing else is written there.
	Stdout io.Writer
	// Logger receives the plugin's logs (klog.Background() when zero).
	Logger klog.Logger
	// OpenStore opens the store of one network; default store.OpenDisk.
	OpenStore func(dir string) (store.Store, error)
	// Resolver finds the ranges.
	Resolver Resolver
	// Hostname names the node when the configuration does not; default os.Hostname.
	Hostname func() (string, error)
}

// Funcs returns the verbs for skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status}
}

func (p *Plugin) logger() klog.Logger {
	if p.Logger.GetSink() == nil {
		return klog.Background()
	}
	return p.Logger
}

// decode reads the network configuration of a CNI call; a bad one is a decoding failure.
func decode(args *skel.CmdArgs) (*conflist.IPAMNetConf, error) {
	conf, err := conflist.DecodeIPAM(args.StdinData)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	return conf, nil
}

// withStore runs fn with the network's store open, and closes it after.
func (p *Plugin) withStore(conf *conflist.IPAMNetConf, fn func(store.Store) error) error {
	s, err := p.open(conf)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

func (p *Plugin) open(conf *conflist.IPAMNetConf) (store.Store, error) {
	open := p.OpenStore
	if open == nil {
		open = func(dir string) (store.Store, error) { return store.OpenDisk(dir) }
	}
	return open(storeDir(conf))
}

func storeDir(conf *conflist.IPAMNetConf) string { return filepath.Join(conf.IPAM.DataDir, conf.Name) }

// resolver is p.Resolver remembering the ranges it learns in the network's store directory.
func (p *Plugin) resolver(conf *conflist.IPAMNetConf) Resolver {
	r := p.Resolver
	r.memory = &rangeMemory{dir: storeDir(conf)}
	return r
}

func (p *Plugin) nodeName(conf *conflist.IPAMConf) (string, error) {
	if conf.NodeName != "" {
		return conf.NodeName, nil
	}
	h := p.Hostname
	if h == nil {
		h = os.Hostname
	}
	name, err := h()
	if err != nil {
		return "", fmt.Errorf("find node name: %w", err)
	}
	return strings.ToLower(strings.TrimSpace(name)), nil
}

func owner(args *skel.CmdArgs) store.Owner {
	return store.Owner{ContainerID: args.ContainerID, IfName: args.IfName}
}

// Add allocates one address per range to (container, ifname) and prints the result.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	conf, err := decode(args)
	if err != nil {
		return err
	}
	node, err := p.nodeName(&conf.IPAM)
	if err != nil {
		return err
	}
	ranges, source, err := p.resolver(conf).Resolve(ctx, &conf.IPAM, node)
	if err != nil {
		return types.NewError(types.ErrTryAgainLater, err.Error(), "")
	}
	log := p.logger().WithValues("containerID", args.ContainerID, "ifName", args.IfName)
	log.V(2).Info("Allocating", "ranges", ranges, "source", source)
	s, err := p.open(conf)
	if err != nil {
		return err
	}
	defer s.Close()
	allocs, err := Allocate(s, owner(args), ranges)
	if err != nil {
		return err
	}
	res := buildResult(conf, allocs)
	log.V(2).Info("Allocated", "ips", allocs)
	out, err := res.GetAsVersion(conf.CNIVersion)
	if err != nil {
		// Give the addresses back: the runtime never learns them.
		_, _ = Release(s, owner(args))
		return fmt.Errorf("convert result to version %s: %w", conf.CNIVersion, err)
	}
	return out.PrintTo(p.Stdout)
}

// buildResult builds the abbreviated IPAM result: addresses with their gateways, routes, no
// interfaces.
func buildResult(conf *conflist.IPAMNetConf, allocs []Allocation) *current.Result {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	fams := map[bool]netip.Addr{}
	for _, a := range allocs {
		res.IPs = append(res.IPs, &current.IPConfig{
			Address: net.IPNet{IP: a.IP.AsSlice(), Mask: net.CIDRMask(a.Range.Bits(), a.IP.BitLen())},
			Gateway: a.Gateway.AsSlice(),
		})
		fams[a.IP.Is4()] = a.Gateway
	}
	routes := conf.IPAM.Routes
	if routes == nil {
		for _, a := range allocs {
			if a.IP.Is4() {
				routes = append(routes, conflist.Route{Dst: "0.0.0.0/0"})
			} else {
				routes = append(routes, conflist.Route{Dst: "::/0"})
			}
		}
	}
	for _, r := range routes {
		dst, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			continue // Validate refused it already
		}
		if _, ok := fams[dst.Addr().Is4()]; !ok {
			continue // no address of that family: the route could not be installed
		}
		rt := &types.Route{Dst: net.IPNet{IP: dst.Masked().Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())}}
		if gw, err := netip.ParseAddr(r.GW); err == nil {
			rt.GW = gw.AsSlice()
		}
		res.Routes = append(res.Routes, rt)
	}
	return res
}

// Del releases what (container, ifname) holds. It is idempotent.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	_, released, err := p.onOwner(args, Release)
	if err != nil {
		return err
	}
	p.logger().V(2).Info("Released", "containerID", args.ContainerID, "ifName", args.IfName, "ips", released)
	return nil
}

// Check fails unless (container, ifname) holds an address.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	conf, held, err := p.onOwner(args, Lookup)
	if err != nil {
		return err
	}
	if len(held) == 0 {
		return fmt.Errorf("container %s interface %s holds no address in network %s", args.ContainerID, args.IfName, conf.Name)
	}
	return nil
}

// onOwner decodes the configuration and runs op on the store for the attachment
// (container, ifname) of args: the addresses op returns.
func (p *Plugin) onOwner(args *skel.CmdArgs, op func(store.Store, store.Owner) ([]netip.Addr, error)) (*conflist.IPAMNetConf, []netip.Addr, error) {
	conf, err := decode(args)
	if err != nil {
		return nil, nil, err
	}
	var addrs []netip.Addr
	err = p.withStore(conf, func(s store.Store) (err error) {
		addrs, err = op(s, owner(args))
		return err
	})
	return conf, addrs, err
}

// GC releases every reservation not among the configuration's valid attachments.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	conf, err := decode(args)
	if err != nil {
		return err
	}
	valid := make([]store.Owner, 0, len(conf.ValidAttachments))
	for _, a := range conf.ValidAttachments {
		valid = append(valid, store.Owner{ContainerID: a.ContainerID, IfName: a.IfName})
	}
	var released []store.Entry
	err = p.withStore(conf, func(s store.Store) (err error) {
		released, err = GC(s, valid)
		return err
	})
	p.logger().V(2).Info("Garbage-collected", "network", conf.Name, "released", len(released))
	return err
}

// Status reports whether ADD can succeed: the ranges are known and the store opens.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	conf, err := decode(args)
	if err != nil {
		return err
	}
	node, err := p.nodeName(&conf.IPAM)
	if err != nil {
		return types.NewError(errPluginNotAvailable, err.Error(), "")
	}
	if _, _, err := p.resolver(conf).Resolve(ctx, &conf.IPAM, node); err != nil {
		return types.NewError(errPluginNotAvailable, err.Error(), "")
	}
	s, err := p.open(conf)
	if err != nil {
		return types.NewError(errPluginNotAvailable, err.Error(), "")
	}
	return s.Close()
}

// IsExhausted reports whether err says a range is full.
func IsExhausted(err error) bool { return errors.Is(err, ErrExhausted) }

// errPluginNotAvailable is the CNI 1.1 STATUS error code "the plugin cannot serve ADD"
// (cni v1.3.0 defines no constant for it).
const errPluginNotAvailable uint = 50
