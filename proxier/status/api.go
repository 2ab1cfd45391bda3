package status

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/desired"
)

// The label selectors the proxier's informers use (package tracker): Services of another
// proxy and slices of headless Services are not kubevs's.
const (
	serviceSelector = "!" + desired.ServiceProxyNameLabel
	sliceSelector   = discoveryv1.LabelServiceName + ",!" + desired.ServiceProxyNameLabel + ",!" + v1.IsHeadlessService
)

// Source lists the API objects status reads. NewSource is the API server's; tests wrap
// client-go's fake clientset.
type Source interface {
	// Node returns the Node called name, or nil and no error if there is none.
	Node(ctx context.Context, name string) (*v1.Node, error)
	// Services lists the Services of every namespace that match the label selector.
	Services(ctx context.Context, selector string) ([]v1.Service, error)
	// EndpointSlices lists the EndpointSlices of every namespace that match the selector.
	EndpointSlices(ctx context.Context, selector string) ([]discoveryv1.EndpointSlice, error)
}

// ListDesired lists the Services, EndpointSlices and the Node nodeName from src and
// computes, with desired.ComputeService and the options the proxier derives from cfg, the
// Node and the host's addresses hostAddrs (package derive: the nodePortAddresses CIDRs and
// the guard rails, which also refuse the API server's endpoints of default/kubernetes and
// every ClusterIP), what every Service kubevs handles asks of this node. local are the pods registered
// on this node (ReadLocalPods; may be nil): endpoints on this node count as local for the
// Local traffic policies by their nodeName or by being registered, as in the proxier. A
// missing Node is no error (the proxier also computes without one). The result is sorted
// by name.
func ListDesired(ctx context.Context, src Source, nodeName string, cfg *config.Configuration, hostAddrs []netip.Addr, local desired.LocalPods) ([]Want, error) {
	objs, err := listObjects(ctx, src, nodeName)
	if err != nil {
		return nil, err
	}
	return computeWants(objs, nodeName, cfg, hostAddrs, local), nil
}

// listing is what status lists from the API server.
type listing struct {
	node *v1.Node
	svcs []v1.Service
	eps  []discoveryv1.EndpointSlice
}

// listObjects gets the Node nodeName and lists the Services and EndpointSlices, the three
// requests at once: under load an API server answers each in seconds, and one after the
// other they added up. A missing Node is no error. The first error in the order Node,
// Services, EndpointSlices is returned.
func listObjects(ctx context.Context, src Source, nodeName string) (listing, error) {
	var (
		o                      listing
		nodeErr, svcErr, epErr error
		wg                     sync.WaitGroup
	)
	wg.Go(func() { o.node, nodeErr = src.Node(ctx, nodeName) })
	wg.Go(func() { o.svcs, svcErr = src.Services(ctx, serviceSelector) })
	wg.Go(func() { o.eps, epErr = src.EndpointSlices(ctx, sliceSelector) })
	wg.Wait()
	switch {
	case nodeErr != nil:
		return listing{}, fmt.Errorf("get node %s: %w", nodeName, nodeErr)
	case svcErr != nil:
		return listing{}, fmt.Errorf("list services: %w", svcErr)
	case epErr != nil:
		return listing{}, fmt.Errorf("list endpoint slices: %w", epErr)
	}
	return o, nil
}

// computeWants is ListDesired's computation over the listed objects. It is pure.
func computeWants(objs listing, nodeName string, cfg *config.Configuration, hostAddrs []netip.Addr, local desired.LocalPods) []Want {
	node, eps := objs.node, objs.eps
	svcs := make([]*desired.APIService, len(objs.svcs))
	for i := range objs.svcs {
		svcs[i] = desired.APIServiceOf(&objs.svcs[i])
	}
	byService := map[types.NamespacedName][]*desired.Slice{}
	for i := range eps {
		s := desired.SliceOf(&eps[i])
		name := types.NamespacedName{Namespace: s.Namespace, Name: s.Service}
		byService[name] = append(byService[name], s)
	}
	opts := derive.Options(cfg, node, hostAddrs)
	// The guard rails' inputs, as the proxier has them (less its kubeconfig's host).
	var clusterIPs derive.ClusterIPIndex
	for _, svc := range svcs {
		clusterIPs.Set(svc.NamespacedName(), svc)
	}
	opts.Reserved.ClusterIPs = &clusterIPs
	opts.Reserved.APIServers = derive.APIServers("", byService[derive.APIServerService])
	dn := derive.Node(nodeName, node)
	var out []Want
	for _, svc := range svcs {
		if desired.Ignored(svc) {
			continue
		}
		name := svc.NamespacedName()
		sl := byService[name]
		slices.SortFunc(sl, func(a, b *desired.Slice) int { return strings.Compare(a.Name, b.Name) })
		st, errs := desired.ComputeService(opts, dn, local, svc, sl)
		w := Want{Service: name, Type: string(svc.Spec.Type), State: st}
		if w.Type == "" {
			w.Type = string(v1.ServiceTypeClusterIP)
		}
		for _, e := range errs {
			w.Skipped = append(w.Skipped, e.Error())
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b Want) int { return strings.Compare(a.Service.String(), b.Service.String()) })
	return out
}
