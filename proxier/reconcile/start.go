package reconcile

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// Start prepares the kernel and adopts what it already holds: it ensures the dummy link,
// the sysctls, the owned sets and the fixed iptables rules, then reads the owned virtual
// servers, addresses and set members into the Reconciler's model (while kube-proxy's
// iptables mode still translates Services, the rules wait for the first Resync: see
// kubeProxyServes). It flushes nothing: what is already right stays as it is (weights
// included). Call it once, after the informers synced, then Resync with every Service.
func (r *Reconciler) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	r.invalidateRead()
	// The sysctls first: an optional one that fails may disable a family (see degrade.go).
	errs := []error{r.prepare(ctx, r.opts.Desired)}
	r.withdrawLocalnet(ctx) // before the rules lose its guard
	if err := r.k.Link.EnsureDummy(r.global.Dummy); err != nil {
		errs = append(errs, fmt.Errorf("ensure dummy link %s: %w", r.global.Dummy, err))
	}
	var rulesErr error
	release := r.holdRuleReads()
	if r.rulesAfterVS = r.kubeProxyServes(ctx); r.rulesAfterVS {
		_, err := r.ensureSets()
		errs = append(errs, err)
		rulesErr = errRulesWait // route_localnet waits for its guard too
	} else {
		rulesErr = r.ensureSetsAndRules(ctx)
		errs = append(errs, rulesErr)
	}
	release()
	r.ensureLocalnet(ctx, rulesErr)
	if err := RaiseSysctls(r.k.Sysctl, r.opts.RaisedSysctls); err != nil {
		// Optional: the kernel's own limits still work; programming goes on.
		logger.Error(err, "Cannot set the conntrack limits and timeouts")
	}
	if t := r.opts.Timeouts; !t.IsZero() {
		if err := r.k.IPVS.SetTimeouts(t); err != nil {
			// Optional: the kernel's own timeouts still work; programming goes on.
			logger.Error(err, "Cannot set the IPVS connection timeouts; the kernel's stay", "timeouts", t)
		}
	}
	errs = append(errs, r.load(ctx, nil, nil))
	r.readDrainRecord(ctx)
	r.started = true
	logger.V(0).Info("Reconciler started", "virtualServers", len(r.m.vs), "addresses", r.m.vips.len(), "setMembers", r.m.entries.len(), "degraded", len(r.degraded))
	return errors.Join(errs...)
}

// holdRuleReads makes Start's reads of the rules share one iptables-save per family
// (netfilter.ReadHolder): kube-proxy's check reads every table, and the rules check right
// after it takes those tables instead of reading them again, also on legacy iptables, which
// has no generation to tell that nothing changed in between. A change by someone else in
// those few steps is found by the first Resync's check.
func (r *Reconciler) holdRuleReads() (release func()) {
	if h, ok := r.k.Netfilter.(netfilter.ReadHolder); ok {
		return h.HoldReads()
	}
	return func() {}
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

// ensureSysctls sets the parameters of ss that need it; it returns the failures by name.
func (r *Reconciler) ensureSysctls(ctx context.Context, ss []desired.Sysctl) map[string]error {
	fails := map[string]error{}
	for _, s := range ss {
		cur, err := r.k.Sysctl.Get(s.Name)
		if err == nil && satisfied(cur, s) {
			continue
		}
		if err := r.k.Sysctl.Set(s.Name, s.Value); err != nil {
			fails[s.Name] = fmt.Errorf("set sysctl %s=%s: %w", s.Name, s.Value, err)
			continue
		}
		klog.FromContext(ctx).V(2).Info("Set sysctl", "name", s.Name, "old", cur, "new", s.Value)
		r.changed = append(r.changed, SysctlChange{Name: s.Name, Old: cur, New: s.Value})
	}
	return fails
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

// ensureSets creates the owned sets the kernel lacks and returns their names.
func (r *Reconciler) ensureSets() ([]string, error) {
	names, err := r.k.IPSet.Sets()
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	var errs []error
	var created []string
	for _, s := range r.global.Sets {
		if slices.Contains(names, s.Name) {
			continue
		}
		err := r.k.IPSet.CreateSet(s)
		switch {
		case err == nil:
			created = append(created, s.Name)
		case !errors.Is(err, ipset.ErrExist):
			errs = append(errs, &familyError{s.Family, fmt.Errorf("create set %s: %w", s.Name, err)})
		}
	}
	return created, errors.Join(errs...)
}

// ensureRules writes the fixed ruleset of each family where the kernel does not hold it:
// one read per table, a write only for a table that differs. It returns the tables it
// rewrote, as "family/table".
func (r *Reconciler) ensureRules() ([]string, error) {
	return r.repairRules(nil)
}

// repairRules is ensureRules for the families verified does not show clean: a family
// Verify read (a key of verified) with no table that differs is left alone, without a read;
// the others are Repaired, which reads them again. verified nil repairs every family.
func (r *Reconciler) repairRules(verified map[ipset.Family][]string) ([]string, error) {
	var errs []error
	var rewritten []string
	for _, fr := range r.global.Rules {
		if differ, ok := verified[fr.Family]; ok && len(differ) == 0 {
			continue
		}
		tables, err := r.k.Netfilter.Repair(fr.Family, fr.Ruleset)
		for _, t := range tables {
			rewritten = append(rewritten, string(fr.Family)+"/"+t)
		}
		if err != nil {
			errs = append(errs, &familyError{fr.Family, fmt.Errorf("ensure %s rules: %w", fr.Family, err)})
		}
	}
	return rewritten, errors.Join(errs...)
}

// SetOptions changes the options of the desired state (cluster CIDRs, masquerade-all,
// strict ARP, families) and rewrites the fixed rules, sets and sysctls if they changed.
// The caller recomputes every Service and calls Resync afterwards. Options that leave the
// fixed state as it was (NodePort addresses without loopback, most often) write nothing
// here: the Resync verifies the fixed state, and repairs and counts as drift what someone
// else changed meanwhile, which a rewrite here would have hidden.
func (r *Reconciler) SetOptions(ctx context.Context, o desired.Options) error {
	r.opts.Desired = o
	r.invalidateRead()
	if !r.started {
		return nil
	}
	before := r.global
	err := r.prepare(ctx, o)
	if reflect.DeepEqual(before, r.global) {
		return err
	}
	r.withdrawLocalnet(ctx) // before the rules lose its guard
	rulesErr := r.ensureSetsAndRules(ctx)
	if rulesErr == nil {
		r.rulesAfterVS = false // written: nothing waits any more
	}
	r.ensureLocalnet(ctx, rulesErr)
	return errors.Join(err, rulesErr)
}

// ensureLocalnet sets route_localnet=1 when r.global wants it (loopback NodePorts), and only
// once the fixed rules, which hold its localnet guard, are in the kernel (rulesErr nil):
// route_localnet without the guard lets a neighbour reach services bound to 127.0.0.1
// (CVE-2020-8558; desired.LocalnetGuardRule). prepare never sets it. A failure is a
// degradation: loopback NodePorts then do not answer, nothing else is affected.
func (r *Reconciler) ensureLocalnet(ctx context.Context, rulesErr error) {
	if rulesErr != nil {
		return
	}
	for _, s := range r.global.Sysctls {
		if s.Name != desired.RouteLocalnetSysctl {
			continue
		}
		// Every Resync tries again: one degradation, logged when it begins.
		step := "sysctl " + s.Name
		was := len(r.degraded)
		r.degraded = slices.DeleteFunc(r.degraded, func(d Degradation) bool { return d.Step == step })
		for name, err := range r.ensureSysctls(ctx, []desired.Sysctl{s}) {
			r.degraded = append(r.degraded, Degradation{Step: step, Err: err})
			if len(r.degraded) > was {
				klog.FromContext(ctx).Error(err, "An optional sysctl cannot be set; going on without it", "sysctl", name)
			}
		}
	}
}
