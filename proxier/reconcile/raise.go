package reconcile

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/sysctl"
)

// RaiseSysctls writes each numeric parameter of ps that the kernel holds lower than asked,
// and leaves higher ones as they are (conntrack limits and timeouts: lowering them under load
// would drop connections). Nothing is recorded for --cleanup. Errors name the parameter; the
// others are still written.
func RaiseSysctls(s sysctl.Interface, ps []desired.Sysctl) error {
	var errs []error
	for _, p := range ps {
		cur, err := s.Get(p.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("read sysctl %s: %w", p.Name, err))
			continue
		}
		if n, err := strconv.ParseInt(cur, 10, 64); err == nil {
			if want, _ := strconv.ParseInt(p.Value, 10, 64); n >= want {
				continue
			}
		}
		if err := s.Set(p.Name, p.Value); err != nil {
			errs = append(errs, fmt.Errorf("set sysctl %s=%s: %w", p.Name, p.Value, err))
		}
	}
	return errors.Join(errs...)
}
