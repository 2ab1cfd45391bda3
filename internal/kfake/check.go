package kfake

import (
	"errors"
	"slices"
	"testing"
)

// Injection is one call of a fake, for CheckInjection.
type Injection struct {
	Op     string       // the operation name FailNext and the hook take
	Target string       // what the hook must be given as the target, and Ops records after Op
	Record bool         // whether the fake records the call in Ops (reads may not be)
	Call   func() error // makes the call on the fake
}

// CheckInjection proves a fake's error injection, for each call in turn: after FailNext(Op)
// the call fails with the injected error, leaves what dump prints as it was, and (when the
// call is recorded) adds the one line Op, Target and the failure mark to Ops; then a hook that
// fails everything is asked once with Op and Target and fails the call the same way. The
// calls are never let through, so each may be one that would change the fake. It reports with
// t.Errorf and goes on; the hook is removed when it returns.
func CheckInjection(t testing.TB, l *Log, dump func() string, calls []Injection) {
	t.Helper()
	defer l.SetHook(nil)
	for _, c := range calls {
		want := errors.New("injected into " + c.Op)
		var seen []string
		inject := map[string]func(){
			"FailNext": func() { l.FailNext(c.Op, want) },
			"hook": func() {
				l.SetHook(func(op, target string) error {
					seen = append(seen, op+" "+target)
					return want
				})
			},
		}
		for _, how := range []string{"FailNext", "hook"} {
			before, ops := dump(), l.Ops()
			inject[how]()
			if err := c.Call(); !errors.Is(err, want) {
				t.Errorf("%s %s with %s: got error %v, want the injected one", c.Op, c.Target, how, err)
			}
			if after := dump(); after != before {
				t.Errorf("%s %s failed by %s changed the fake:\nbefore:\n%s\nafter:\n%s", c.Op, c.Target, how, before, after)
			}
			var wantOps []string
			if c.Record {
				wantOps = []string{lineOf(c.Op, c.Target) + markOf(l.mark, want)}
			}
			if got := l.Ops()[len(ops):]; !slices.Equal(got, wantOps) {
				t.Errorf("%s %s failed by %s: Ops added %q, want %q", c.Op, c.Target, how, got, wantOps)
			}
		}
		if wantSeen := []string{c.Op + " " + c.Target}; !slices.Equal(seen, wantSeen) {
			t.Errorf("the hook was asked %q, want %q", seen, wantSeen)
		}
		l.SetHook(nil)
	}
}
