package tracker

// The change tracker keeps, per Service, the state it had when the last sync took it
// (previous) and its state now (current). A Service is pending when the two differ in what
// the proxier computes from; an update that is undone before the next sync cancels out and
// costs nothing. An ignored Service (headless, ExternalName, another proxy's) has the same
// state as an absent one, so gaining the service-proxy-name label looks like a deletion and
// losing it like a creation.

import (
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
)

// TriggerTimeAnnotation is set by the EndpointSlice controller to the time of the change
// (a Pod or Service update) that caused the slice's last update.
const TriggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time"

// state is what the proxier knows of one Service: the Service (nil when absent) and its
// EndpointSlices sorted by name (a Service has one or a few: a sorted list is a fraction of
// a map's bytes). Values are never mutated, only replaced.
type state struct {
	svc    *desired.APIService
	slices []*cachedSlice
}

// equal reports whether two states compute to the same kernel state for certain enough:
// the Service's spec, labels, annotations and LoadBalancer ingress status (set by
// UpdateStatus, often after the Service was synced), or both ignored; and each slice's
// address type, ports and endpoints. Resource versions and trigger times do not count.
func (a state) equal(b state) bool {
	as, bs := a.svc, b.svc
	if desired.Ignored(as) {
		as = nil
	}
	if desired.Ignored(bs) {
		bs = nil
	}
	if (as == nil) != (bs == nil) {
		return false
	}
	if as != nil && !as.SameState(bs) {
		return false
	}
	return slices.EqualFunc(a.slices, b.slices, func(sa, sb *cachedSlice) bool { return sa.Slice.Equal(&sb.Slice) })
}

func (a state) empty() bool { return a.svc == nil && len(a.slices) == 0 }

// change is one Service's pending change.
type change struct {
	previous state
	// triggers are the trigger times of the slice updates folded into this change.
	triggers []time.Time
	// forced keeps the change even if the state is back to previous (a local pod changed).
	forced bool
}

func (ch *change) changed(current state) bool { return ch.forced || !ch.previous.equal(current) }

// changes tracks the current state of every Service and what changed since the last take.
// It is not safe for concurrent use; Tracker holds a lock around it.
type changes struct {
	current map[types.NamespacedName]state
	pending map[types.NamespacedName]*change
	// since drops trigger times older than this (objects listed at start).
	since time.Time
}

func newChanges(since time.Time) *changes {
	return &changes{current: map[types.NamespacedName]state{}, pending: map[types.NamespacedName]*change{}, since: since}
}

// begin records the previous state of name on its first change since the last take and
// returns a copy of the current state to modify.
func (c *changes) begin(name types.NamespacedName) (*change, state) {
	cur := c.current[name]
	ch, ok := c.pending[name]
	if !ok {
		ch = &change{previous: cur}
		c.pending[name] = ch
	}
	return ch, state{svc: cur.svc, slices: slices.Clone(cur.slices)}
}

func (c *changes) commit(name types.NamespacedName, s state) {
	if s.empty() {
		delete(c.current, name)
		return
	}
	c.current[name] = s
}

// setService records svc (nil: deleted) as the Service called name.
func (c *changes) setService(name types.NamespacedName, svc *desired.APIService) {
	_, s := c.begin(name)
	s.svc = svc
	c.commit(name, s)
}

// setSlice records sl (nil: deleted) as the slice called sliceName of Service name.
func (c *changes) setSlice(name types.NamespacedName, sliceName string, sl *cachedSlice) {
	ch, s := c.begin(name)
	i, found := slices.BinarySearchFunc(s.slices, sliceName, func(e *cachedSlice, n string) int { return strings.Compare(e.Name, n) })
	switch {
	case sl == nil && found:
		s.slices = slices.Delete(s.slices, i, i+1)
	case sl != nil && found:
		s.slices[i] = sl
	case sl != nil:
		s.slices = slices.Insert(s.slices, i, sl)
	}
	if len(s.slices) == 0 {
		s.slices = nil
	}
	if sl != nil && !sl.trigger.IsZero() && !sl.trigger.Before(c.since) {
		ch.triggers = append(ch.triggers, sl.trigger)
	}
	c.commit(name, s)
}

// touch marks name as changed without changing its state (a local pod came or went).
func (c *changes) touch(name types.NamespacedName) {
	ch, _ := c.begin(name)
	ch.forced = true
}

// names returns the Services whose state differs from the last take.
func (c *changes) names() map[types.NamespacedName]struct{} {
	out := map[types.NamespacedName]struct{}{}
	for name, ch := range c.pending {
		if ch.changed(c.current[name]) {
			out[name] = struct{}{}
		}
	}
	return out
}

// take returns the changed Services and the trigger times of their changes, and starts
// a new round: every current state becomes the previous one.
func (c *changes) take() (map[types.NamespacedName]struct{}, []time.Time) {
	out := map[types.NamespacedName]struct{}{}
	var triggers []time.Time
	for name, ch := range c.pending {
		if ch.changed(c.current[name]) {
			out[name] = struct{}{}
			triggers = append(triggers, ch.triggers...)
		}
	}
	c.pending = map[types.NamespacedName]*change{}
	return out, triggers
}
