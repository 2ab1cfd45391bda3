package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// Start prepares the kernel and adopts what it already holds: it ensures the dummy link,
// the sysctls, the owned sets and the fixed iptables rules, then reads the owned virtual
// servers, addresses and set members into the Reconciler's model. It flushes nothing: what
// is already right stays as it is (weights included). Call it once, after the informers
// synced, then Resync with every Service.
func (r *Reconciler) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	kv := r.kernelVersion(ctx)
	r.global = desired.Global(r.opts.Desired, kv)
	var errs []error
	if err := r.k.Link.EnsureDummy(r.global.Dummy); err != nil {
		errs = append(errs, fmt.Errorf("ensure dummy link %s: %w", r.global.Dummy, err))
	}
	errs = append(errs, r.ensureGlobal(ctx))
	errs = append(errs, r.load(ctx, nil, nil))
	r.started = true
	logger.V(0).Info("Reconciler started", "kernel", kv, "virtualServers", len(r.m.vs), "addresses", len(r.m.bound), "setMembers", len(r.m.entries))
	return errors.Join(errs...)
}

// kernelVersion reads the running kernel's version through the sysctl adapter
// (kernel/osrelease); when it cannot, it assumes a recent kernel, which only means
// conn_reuse_mode is left alone.
func (r *Reconciler) kernelVersion(ctx context.Context) desired.KernelVersion {
	recent := desired.KernelVersion{Major: 6}
	rel, err := r.k.Sysctl.Get("kernel/osrelease")
	if err != nil {
		klog.FromContext(ctx).Error(err, "Cannot read the kernel version, assuming a recent kernel")
		return recent
	}
	kv, err := desired.ParseKernelVersion(rel)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Cannot parse the kernel version, assuming a recent kernel")
		return recent
	}
	return kv
}

// ensureSysctls sets the sysctls Global wants; route_localnet only when guarded (the
// localnet guard rule is in the kernel).
func (r *Reconciler) ensureSysctls(ctx context.Context, guarded bool) error {
	var errs []error
	for _, s := range r.global.Sysctls {
		if s.Name == desired.RouteLocalnetSysctl && !guarded {
			continue
		}
		cur, err := r.k.Sysctl.Get(s.Name)
		if err == nil && satisfied(cur, s) {
			continue
		}
		if err := r.k.Sysctl.Set(s.Name, s.Value); err != nil {
			errs = append(errs, fmt.Errorf("set sysctl %s=%s: %w", s.Name, s.Value, err))
			continue
		}
		klog.FromContext(ctx).V(2).Info("Set sysctl", "name", s.Name, "old", cur, "new", s.Value)
		r.changed = append(r.changed, SysctlChange{Name: s.Name, Old: cur, New: s.Value})
	}
	return errors.Join(errs...)
}

func satisfied(cur string, s desired.Sysctl) bool {
	if cur == s.Value {
		return true
	}
	if !s.AtLeast {
		return false
	}
	c, err1 := strconv.Atoi(cur)
	w, err2 := strconv.Atoi(s.Value)
	return err1 == nil && err2 == nil && c >= w
}

func (r *Reconciler) ensureSets() error {
	names, err := r.k.IPSet.Sets()
	if err != nil {
		return fmt.Errorf("list sets: %w", err)
	}
	var errs []error
	for _, s := range r.global.Sets {
		if slices.Contains(names, s.Name) {
			continue
		}
		if err := r.k.IPSet.CreateSet(s); err != nil && !errors.Is(err, ipset.ErrExist) {
			errs = append(errs, fmt.Errorf("create set %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// ensureRules writes the fixed ruleset of each family unless the kernel already holds it.
func (r *Reconciler) ensureRules() error {
	var errs []error
	for _, fr := range r.global.Rules {
		if cur, err := r.k.Netfilter.Dump(fr.Family); err == nil && equalRules(cur, fr.Ruleset) {
			continue
		}
		if err := r.k.Netfilter.Ensure(fr.Family, fr.Ruleset); err != nil {
			errs = append(errs, fmt.Errorf("ensure %s rules: %w", fr.Family, err))
		}
	}
	return errors.Join(errs...)
}

// SetOptions changes the options of the desired state (cluster CIDRs, masquerade-all,
// strict ARP, families) and rewrites the fixed rules, sets and sysctls if they changed.
// The caller recomputes every Service and calls Resync afterwards.
func (r *Reconciler) SetOptions(ctx context.Context, o desired.Options) error {
	r.opts.Desired = o
	if !r.started {
		return nil
	}
	r.global = desired.Global(o, r.kernelVersion(ctx))
	return r.ensureGlobal(ctx)
}

// ensureGlobal writes the fixed sets, then the rules that match them, then the sysctls:
// route_localnet=1 only once the rules that hold its localnet guard are in
// (CVE-2020-8558; desired.RouteLocalnet). When the rules failed it is left unset, for the
// retry of the next sync.
func (r *Reconciler) ensureGlobal(ctx context.Context) error {
	setsErr := r.ensureSets()
	rulesErr := r.ensureRules()
	return errors.Join(setsErr, rulesErr, r.ensureSysctls(ctx, rulesErr == nil))
}

// equalRules compares two rulesets, ignoring the order of chains and of jumps.
func equalRules(a, b netfilter.Ruleset) bool {
	if len(a.Chains) != len(b.Chains) || len(a.Jumps) != len(b.Jumps) {
		return false
	}
	chains := func(rs netfilter.Ruleset) []netfilter.Chain {
		c := slices.Clone(rs.Chains)
		slices.SortFunc(c, func(x, y netfilter.Chain) int { return strings.Compare(x.Table+" "+x.Name, y.Table+" "+y.Name) })
		return c
	}
	jumps := func(rs netfilter.Ruleset) []netfilter.Jump {
		j := slices.Clone(rs.Jumps)
		slices.SortFunc(j, func(x, y netfilter.Jump) int {
			return strings.Compare(x.Table+" "+x.From+" "+x.To+" "+x.Match, y.Table+" "+y.From+" "+y.To+" "+y.Match)
		})
		return j
	}
	eqChain := func(x, y netfilter.Chain) bool {
		return x.Table == y.Table && x.Name == y.Name && slices.Equal(x.Rules, y.Rules)
	}
	return slices.EqualFunc(chains(a), chains(b), eqChain) && slices.Equal(jumps(a), jumps(b))
}
