package daemon

// What kubevs_objects_skipped_total counts, and when a refusal is reported as an Event.
//
// A Service is computed again for many reasons that say nothing about its skips: its own
// change in a partial sync, the same change folded into a full sync (a retry, new options),
// an unrelated change of the options or of the ClusterIPs, a periodic resync, or not at all
// when the cache is reused. Counting per computation made the counter depend on which of
// these happened. The ledger instead remembers, per Service, the skips of its last
// computation, and a skip counts once when it appears: a transition of one part of one
// Service (identified by reason and message) from programmed or absent to skipped. It
// counts again only after a computation without it (the part was fixed, or the Service
// deleted) and in a new process (the counter starts at zero).

import (
	"errors"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
)

// skipKey identifies one skipped part of a Service across computations.
type skipKey struct {
	reason desired.Reason
	msg    string
}

// skipLedger holds, per Service, the skips of its last computation. Not safe for
// concurrent use (the daemon holds kmu).
type skipLedger map[types.NamespacedName]map[skipKey]struct{}

// note records errs as the skips of name's latest computation and returns those that
// were not among the previous computation's, in errs' order (each once).
func (l skipLedger) note(name types.NamespacedName, errs []error) []error {
	prev := l[name]
	var cur map[skipKey]struct{}
	var fresh []error
	for _, err := range errs {
		k := skipKey{reason: desired.ReasonOf(err), msg: err.Error()}
		if cur == nil {
			cur = map[skipKey]struct{}{}
		}
		if _, dup := cur[k]; dup {
			continue
		}
		cur[k] = struct{}{}
		if _, seen := prev[k]; !seen {
			fresh = append(fresh, err)
		}
	}
	if cur == nil {
		delete(l, name)
	} else {
		l[name] = cur
	}
	return fresh
}

// retain forgets the Services for which keep is false (deleted ones a full sync no
// longer computes), so a Service created again under the same name counts anew.
func (l skipLedger) retain(keep func(types.NamespacedName) bool) {
	for name := range l {
		if !keep(name) {
			delete(l, name)
		}
	}
}

// refusal returns err's SkipError when it is reported as an Event.
func refusal(err error) (*desired.SkipError, bool) {
	var se *desired.SkipError
	return se, errors.As(err, &se) && se.Event != ""
}
