package reconcile

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kubevs/kubevs/proxier/sysctl"
)

// keptOnCleanup are the parameters RestoreSysctls never turns back: the node's pod network
// (bridge, CNI plugins, the kubelet's expectations) needs forwarding whether or not kubevs
// runs, and turning it off would cut every pod off the network.
var keptOnCleanup = []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"}

// RestoreSysctls sets back the parameters of changes (as returned by SysctlChanges, which
// the daemon may persist for its --cleanup) to their old values, except forwarding. A
// parameter someone changed again since (its value is no longer the one kubevs set) is
// left alone. Errors name the parameter; the others are still restored.
func RestoreSysctls(s sysctl.Interface, changes []SysctlChange) error {
	var errs []error
	for _, c := range changes {
		if slices.Contains(keptOnCleanup, c.Name) || c.Old == "" {
			continue
		}
		cur, err := s.Get(c.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", c.Name, err))
			continue
		}
		if cur != c.New {
			continue
		}
		if err := s.Set(c.Name, c.Old); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", c.Name, c.Old, err))
		}
	}
	return errors.Join(errs...)
}
