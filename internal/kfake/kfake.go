// Package kfake holds the bookkeeping the in-memory kernel fakes share (ipvstest, linktest,
// ipsettest, netfiltertest, conntracktest, sysctltest): a log of the operations a fake was
// asked to do, a count of calls per operation, and error injection, either queued per
// operation (FailNext) or decided by a hook.
//
// A fake embeds the *Log, so a test calls f.Ops(), f.FailNext(op, err) on the fake itself, and
// keeps the paired *Recorder unexported to log its calls:
//
//	c, err := f.rec.Begin("add-addr", "kube-ipvs0 10.96.0.1", true)
//	if err != nil {
//		return err // injected; the line is already marked failed
//	}
//	...
//	return c.Done(applyErr) // marks the line failed when applyErr is not nil
//
// Log and Recorder have their own lock. A fake calls Begin with its own lock held, so a hook
// runs under the fake's lock and must not call back into the fake.
package kfake

import (
	"slices"
	"sync"
)

// Hook decides whether a call fails: it gets the operation's name and its target (the text
// the log records after the name). A non-nil error fails the call before it changes anything.
type Hook func(op, target string) error

// Mark is how the log line of a failed call ends.
type Mark int

const (
	// MarkError appends ": " and the error's text.
	MarkError Mark = iota
	// MarkFailed appends " (failed)".
	MarkFailed
)

// Log is what a test sees of a fake's bookkeeping: the recorded operations, the call counts,
// and the error injection. It is safe for concurrent use. Create it with New.
type Log struct {
	mu    sync.Mutex
	mark  Mark
	ops   []string
	gen   int // counts ResetOps, so a call begun before one does not edit a later line
	calls map[string]int
	fails map[string][]error
	hook  Hook
}

// Recorder is the fake's side of a Log: it begins calls and records lines.
type Recorder struct{ l *Log }

// New returns an empty log whose failed lines end as mark says, and its recorder.
func New(mark Mark) (*Log, *Recorder) {
	l := &Log{mark: mark, calls: map[string]int{}, fails: map[string][]error{}}
	return l, &Recorder{l: l}
}

// Ops returns the recorded lines since the last ResetOps, in order. Which calls a fake
// records (writes only, or reads too) and what their lines say is the fake's to document.
func (l *Log) Ops() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ops)
}

// Calls returns how many times op was called, recorded or not, since the last ResetOps.
func (l *Log) Calls(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[op]
}

// ResetOps forgets the recorded lines and the call counts. Queued failures and the hook stay,
// and so does whatever the fake holds.
func (l *Log) ResetOps() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = nil
	l.calls = map[string]int{}
	l.gen++
}

// FailNext makes the next call of op fail with err, changing nothing. Calling it again queues
// more failures, used one per call in order.
func (l *Log) FailNext(op string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails[op] = append(l.fails[op], err)
}

// SetHook installs h (nil removes it). It is asked only when no FailNext failure is queued for
// the call's operation.
func (l *Log) SetHook(h Hook) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hook = h
}

// Call is one call in progress, begun by Recorder.Begin.
type Call struct {
	l      *Log
	i      int // index of its line in l.ops, or -1 when not recorded
	gen    int
	failed bool
}

// Begin counts a call of op and, when record is set, appends its line: op, then a blank and
// target unless target is empty. It returns the error injected for the call, the first one
// FailNext queued for op or else the hook's; the line of an injected failure is already
// marked, and the fake must return that error without changing anything.
func (r *Recorder) Begin(op, target string, record bool) (*Call, error) {
	l := r.l
	l.mu.Lock()
	l.calls[op]++
	c := &Call{l: l, i: -1, gen: l.gen}
	if record {
		c.i = len(l.ops)
		l.ops = append(l.ops, lineOf(op, target))
	}
	var err error
	hook := l.hook
	if q := l.fails[op]; len(q) > 0 {
		err, l.fails[op] = q[0], q[1:]
		hook = nil
	}
	l.mu.Unlock()
	if hook != nil {
		err = hook(op, target)
	}
	return c, c.Done(err)
}

// Record appends a line that belongs to no call of its own, such as a step a call took.
func (r *Recorder) Record(line string) {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	r.l.ops = append(r.l.ops, line)
}

// Done marks the call's line failed when err is not nil (once, however often it is called)
// and returns err.
func (c *Call) Done(err error) error {
	if err == nil || c.failed {
		return err
	}
	c.failed = true
	c.Note(markOf(c.l.mark, err))
	return err
}

// Note appends text to the call's line, such as its result; it does nothing for a call that is
// not recorded or whose line ResetOps has dropped.
func (c *Call) Note(text string) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.i >= 0 && c.gen == c.l.gen && c.i < len(c.l.ops) {
		c.l.ops[c.i] += text
	}
}

// lineOf is the line of a call of op on target.
func lineOf(op, target string) string {
	if target == "" {
		return op
	}
	return op + " " + target
}

// markOf is what a line gets appended when its call fails with err.
func markOf(m Mark, err error) string {
	if m == MarkFailed {
		return " (failed)"
	}
	return ": " + err.Error()
}
