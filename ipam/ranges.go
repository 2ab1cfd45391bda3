package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/conflist"
	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// Range sources, in the order Resolve asks them.
const (
	SourceNodeAPI   = "node API"
	SourceAPIServer = "API server"
	SourceLearned   = "learned ranges"
	SourceStatic    = "static ranges"
)

// apiServerTimeout bounds the Node read from the API server.
const apiServerTimeout = 5 * time.Second

// Resolver finds the pod CIDRs to allocate from. The zero value asks the real proxier and API
// server; tests replace the functions.
type Resolver struct {
	// NodeAPI returns the podCIDRs the proxier on socket reports.
	NodeAPI func(ctx context.Context, socket string) ([]netip.Prefix, error)
	// APIServer returns the spec.podCIDRs of the Node named node, read with kubeconfig.
	APIServer func(ctx context.Context, kubeconfig, node string) ([]netip.Prefix, error)

	// memory, when set, remembers what a live source gave and is asked when both fail
	// (learned.go). The plugin sets it to the network's store directory.
	memory *rangeMemory
}

// Resolve returns the ranges to allocate from and the source that gave them: the proxier's
// node API, else the API server (when conf.Kubeconfig is set), else the ranges one of them
// last gave (when r remembers them), else conf.Ranges. A source that fails or knows no
// podCIDRs passes to the next; the error lists why each one failed. What a live source gives
// is remembered; failing to remember it is logged, not an error.
func (r Resolver) Resolve(ctx context.Context, conf *conflist.IPAMConf, nodeName string) ([]netip.Prefix, string, error) {
	nodeAPI, apiServer := r.NodeAPI, r.APIServer
	if nodeAPI == nil {
		nodeAPI = fromNodeAPI
	}
	if apiServer == nil {
		apiServer = fromAPIServer
	}
	var errs []error
	try := func(source string, get func() ([]netip.Prefix, error)) []netip.Prefix {
		ps, err := get()
		if err == nil && len(ps) == 0 {
			err = errors.New("no podCIDRs")
		}
		if err == nil {
			err = checkRanges(ps)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source, err))
			return nil
		}
		return ps
	}
	live := func(ps []netip.Prefix, source string) ([]netip.Prefix, string, error) {
		if r.memory != nil {
			if err := r.memory.remember(nodeName, ps); err != nil {
				klog.FromContext(ctx).Error(err, "Remember the node's pod CIDRs", "source", source)
			}
		}
		return ps, source, nil
	}
	if ps := try(SourceNodeAPI, func() ([]netip.Prefix, error) { return nodeAPI(ctx, conf.NodeAPISocket) }); ps != nil {
		return live(ps, SourceNodeAPI)
	}
	if conf.Kubeconfig != "" {
		if ps := try(SourceAPIServer, func() ([]netip.Prefix, error) { return apiServer(ctx, conf.Kubeconfig, nodeName) }); ps != nil {
			return live(ps, SourceAPIServer)
		}
	} else {
		errs = append(errs, fmt.Errorf("%s: no kubeconfig configured", SourceAPIServer))
	}
	if r.memory != nil {
		if ps := try(SourceLearned, func() ([]netip.Prefix, error) { return r.memory.recall(nodeName) }); ps != nil {
			return ps, SourceLearned, nil
		}
	}
	if ps := try(SourceStatic, func() ([]netip.Prefix, error) { return conflist.ParseRanges(conf.Ranges) }); ps != nil {
		return ps, SourceStatic, nil
	}
	return nil, "", fmt.Errorf("find pod CIDRs of node %q: %w", nodeName, errors.Join(errs...))
}

// checkRanges applies the rules of conflist.ParseRanges to ranges learned at run time.
func checkRanges(ps []netip.Prefix) error {
	var fams []bool
	for _, p := range ps {
		if err := conflist.CheckRange(p); err != nil {
			return err
		}
		if slices.Contains(fams, p.Addr().Is4()) {
			return fmt.Errorf("%v: two ranges of the same IP family", ps)
		}
		fams = append(fams, p.Addr().Is4())
	}
	return nil
}

func fromNodeAPI(ctx context.Context, socket string) ([]netip.Prefix, error) {
	st, err := nodeapi.NewClient(socket).Status(ctx)
	if err != nil {
		return nil, err
	}
	return st.PodCIDRs, nil
}

func fromAPIServer(ctx context.Context, kubeconfig, node string) ([]netip.Prefix, error) {
	c, err := loadKubeconfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, apiServerTimeout)
	defer cancel()
	cidrs, err := c.nodePodCIDRs(ctx, node)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("node %s podCIDR %q: %w", node, s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
