package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/reconcile"
)

// sysctlFile records, in the state directory, the sysctls kubevs changed and their values
// before, so --cleanup can restore them. Never rename it: a new version must find the file
// an old one wrote.
const sysctlFile = "sysctl-changes.json"

// drainFile records, in the state directory, the deadlines of the real servers draining
// (reconcile.Options.DrainFile), so a restart does not re-arm them.
const drainFile = "drains.json"

// saveSysctlChanges adds changes to the record in dir. A parameter already recorded keeps
// its first old value: after a restart Start changes nothing, the original is what counts.
func saveSysctlChanges(dir string, changes []reconcile.SysctlChange) error {
	if len(changes) == 0 {
		return nil
	}
	recorded, err := loadSysctlChanges(dir)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, c := range recorded {
		seen[c.Name] = true
	}
	for _, c := range changes {
		if !seen[c.Name] {
			recorded = append(recorded, c)
			seen[c.Name] = true
		}
	}
	data, err := json.MarshalIndent(recorded, "", "  ")
	if err != nil {
		return fmt.Errorf("encode sysctl changes: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, sysctlFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

func loadSysctlChanges(dir string) ([]reconcile.SysctlChange, error) {
	path := filepath.Join(dir, sysctlFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []reconcile.SysctlChange
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return out, nil
}

// Cleanup removes everything kubevs owns from the kernel (virtual servers outside
// ipvs.excludeCIDRs, kube-ipvs0, the KUBE-* sets and chains) and restores the sysctls it
// recorded changing, forwarding excepted. k nil means the Linux adapters. It may run any
// number of times.
func Cleanup(ctx context.Context, c *config.Configuration, k *reconcile.Kernel) error {
	logger := klog.FromContext(ctx)
	if k == nil {
		kk, err := NewKernel()
		if err != nil {
			return err
		}
		k = &kk
	}
	var errs []error
	if err := reconcile.Cleanup(ctx, *k, config.ParsedCIDRs(c.IPVS.ExcludeCIDRs)); err != nil {
		errs = append(errs, fmt.Errorf("clean up kernel state: %w", err))
	}
	changes, err := loadSysctlChanges(c.StateDir)
	if err != nil {
		errs = append(errs, err)
	} else if err := reconcile.RestoreSysctls(k.Sysctl, changes); err != nil {
		errs = append(errs, fmt.Errorf("restore sysctls: %w", err))
	} else if len(changes) > 0 {
		if err := os.Remove(filepath.Join(c.StateDir, sysctlFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove sysctl record: %w", err))
		}
	}
	if err := os.Remove(filepath.Join(c.StateDir, drainFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove drain record: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("Removed kubevs's kernel state")
	return nil
}
