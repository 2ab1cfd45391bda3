package status

// Where a status run's time goes, and why its reads overlap: the API server's three answers
// (the Node, the Services, the EndpointSlices) and the kernel's (IPVS, the dummy link's
// addresses, the sets, one iptables-save per family) do not depend on each other, except that
// the sets and rules to read follow from the Node. In the emulated test bed an iptables-save
// is a process start of 1-2 s and an API request under load takes seconds; one after the
// other they added up to 8-35 s. So the API requests run at once, beside the kernel reads,
// and a run takes about the longer of the two.

import (
	"context"
	"errors"
	"net/netip"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/link"
)

// Run lists what the API asks of node (options from cfg), reads the kernel through env and
// compares the two. It never writes to the kernel. Every kernel read is bounded by
// env.StepTimeout and by ctx: Run cannot hang on a kernel or a tool that does not answer.
func Run(ctx context.Context, node string, cfg *config.Configuration, env Env) (Report, error) {
	r, err := newReader(ctx, env.StepTimeout)
	if err != nil {
		return Report{}, err
	}
	defer r.close()
	return runWith(ctx, r, node, cfg, env)
}

// runWith is Run with the reader of the run, which also opened env. It returns only once no
// read of r is pending, so the caller may close r.
func runWith(ctx context.Context, r *reader, node string, cfg *config.Configuration, env Env) (Report, error) {
	env = guard(env, r)
	local, err := get(r, "read pod registrations in "+cfg.RegistrationDir, func() (desired.PodSet, error) { return ReadLocalPods(cfg.RegistrationDir) })
	if err != nil {
		return Report{}, err
	}
	var hosts []netip.Addr
	if env.HostAddresses != nil { // nodePortAddresses and the guard rails
		if hosts, err = env.HostAddresses(); err != nil {
			return Report{}, err
		}
	}
	// The API's answers reach the kernel side through api: the sets and rules follow from the Node.
	type listed struct {
		objs listing
		err  error
	}
	api := make(chan listed, 1)
	var (
		snap    Snapshot
		fx      FixedSnapshot
		g       desired.GlobalState
		kernErr error
	)
	kernelDone := make(chan struct{})
	fixed := env.IPSet != nil || env.Netfilter != nil
	go func() {
		defer close(kernelDone)
		if snap, kernErr = ReadKernel(env.IPVS, env.Link, link.DefaultDummy); kernErr != nil || !fixed {
			return
		}
		l := <-api
		if l.err != nil {
			return
		}
		// The rules and sets do not depend on the kernel version (only sysctls do).
		g = desired.Global(derive.Options(cfg, l.objs.node, hosts), desired.KernelVersion{Major: 6})
		fx, kernErr = ReadFixed(env.IPSet, env.Netfilter, g)
	}()
	objs, apiErr := listObjects(ctx, env.API, node)
	api <- listed{objs, apiErr}
	<-kernelDone
	if te := (*TimeoutError)(nil); errors.As(kernErr, &te) {
		return Report{}, kernErr // it names the check that did not answer
	}
	if apiErr != nil {
		return Report{}, apiErr
	}
	if kernErr != nil {
		return Report{}, kernErr
	}
	wants := computeWants(objs, node, cfg, hosts, local)
	rep := Compare(CompareOptions{Node: node, ExcludeCIDRs: config.ParsedCIDRs(cfg.IPVS.ExcludeCIDRs)}, wants, snap)
	if !fixed {
		return rep, nil
	}
	rep.Drift = append(rep.Drift, CompareFixed(g, wants, fx, env.IPSet != nil, env.Netfilter != nil)...)
	return rep, nil
}
