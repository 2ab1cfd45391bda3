package kfake

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var errBoom = errors.New("boom")

// call is one step of a fake's call: Begin, then the fake's own result.
type call struct {
	op, target string
	record     bool
	result     error  // what the fake's work returns when nothing was injected
	note       string // appended on success
}

func run(r *Recorder, c call) error {
	k, err := r.Begin(c.op, c.target, c.record)
	if err != nil {
		return err
	}
	if err := k.Done(c.result); err != nil {
		return err
	}
	if c.note != "" {
		k.Note(c.note)
	}
	return nil
}

func TestLog(t *testing.T) {
	add := call{op: "add", target: "S 10.0.0.1", record: true}
	list := call{op: "list", target: "S"}
	tests := []struct {
		name     string
		mark     Mark
		setup    func(*Log)
		calls    []call
		wantErrs []error
		wantOps  []string
	}{
		{
			name:     "writes recorded, reads counted only",
			calls:    []call{add, list, {op: "sets", record: true}},
			wantErrs: []error{nil, nil, nil},
			wantOps:  []string{"add S 10.0.0.1", "sets"},
		},
		{
			name:     "the fake's own failure marks its line with the error",
			calls:    []call{{op: "del", target: "S", record: true, result: errBoom}},
			wantErrs: []error{errBoom},
			wantOps:  []string{"del S: boom"},
		},
		{
			name:     "failed mark",
			mark:     MarkFailed,
			calls:    []call{{op: "del", target: "S", record: true, result: errBoom}},
			wantErrs: []error{errBoom},
			wantOps:  []string{"del S (failed)"},
		},
		{
			name:     "FailNext queues failures used in order, one per call of that op only",
			setup:    func(l *Log) { l.FailNext("add", errBoom); l.FailNext("add", errors.New("bang")) },
			calls:    []call{list, add, add, add},
			wantErrs: []error{nil, errBoom, errors.New("bang"), nil},
			wantOps:  []string{"add S 10.0.0.1: boom", "add S 10.0.0.1: bang", "add S 10.0.0.1"},
		},
		{
			name:     "an injected read failure is returned, not recorded",
			setup:    func(l *Log) { l.FailNext("list", errBoom) },
			calls:    []call{list, list},
			wantErrs: []error{errBoom, nil},
			wantOps:  nil,
		},
		{
			name: "the hook sees op and target, and is not asked while a failure is queued",
			setup: func(l *Log) {
				l.FailNext("add", errors.New("queued"))
				l.SetHook(func(op, target string) error { return fmt.Errorf("hook %s %s", op, target) })
			},
			calls:    []call{add, add},
			wantErrs: []error{errors.New("queued"), errors.New("hook add S 10.0.0.1")},
			wantOps:  []string{"add S 10.0.0.1: queued", "add S 10.0.0.1: hook add S 10.0.0.1"},
		},
		{
			name:     "a removed hook fails nothing",
			setup:    func(l *Log) { l.SetHook(func(string, string) error { return errBoom }); l.SetHook(nil) },
			calls:    []call{add},
			wantErrs: []error{nil},
			wantOps:  []string{"add S 10.0.0.1"},
		},
		{
			name:     "a note is appended on success only",
			mark:     MarkFailed,
			setup:    func(l *Log) { l.FailNext("delete-addr", errBoom) },
			calls:    []call{{op: "delete-addr", target: "10.0.0.1", record: true, note: " = 3"}, {op: "delete-addr", target: "10.0.0.1", record: true, note: " = 3"}},
			wantErrs: []error{errBoom, nil},
			wantOps:  []string{"delete-addr 10.0.0.1 (failed)", "delete-addr 10.0.0.1 = 3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, r := New(tt.mark)
			if tt.setup != nil {
				tt.setup(l)
			}
			var errs []error
			for _, c := range tt.calls {
				errs = append(errs, run(r, c))
			}
			if diff := cmp.Diff(tt.wantErrs, errs, cmp.Comparer(sameError)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOps, l.Ops()); diff != "" {
				t.Errorf("Ops (-want +got):\n%s", diff)
			}
		})
	}
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

func TestDoneMarksOnce(t *testing.T) {
	l, r := New(MarkFailed)
	l.FailNext("ensure", errBoom)
	c, err := r.Begin("ensure", "inet", true)
	if !errors.Is(err, errBoom) {
		t.Fatalf("Begin = %v, want boom", err)
	}
	r.Record("restore inet nat")
	if got := c.Done(fmt.Errorf("ensure inet rules: %w", err)); !errors.Is(got, errBoom) {
		t.Errorf("Done = %v, want it returned", got)
	}
	if diff := cmp.Diff([]string{"ensure inet (failed)", "restore inet nat"}, l.Ops()); diff != "" {
		t.Errorf("Ops (-want +got):\n%s", diff)
	}
}

func TestResetOps(t *testing.T) {
	l, r := New(MarkError)
	l.FailNext("add", errBoom)
	c, _ := r.Begin("list", "", true)
	if _, err := r.Begin("read", "", false); err != nil {
		t.Fatal(err)
	}
	l.ResetOps()
	if got, calls := l.Ops(), l.Calls("read"); len(got) != 0 || calls != 0 {
		t.Errorf("after ResetOps: Ops %q, Calls(read) %d", got, calls)
	}
	// A call begun before the reset does not edit the line that took its place.
	r.Record("later")
	c.Note(" = 1")
	_ = c.Done(errBoom)
	// Queued failures outlive the reset.
	if _, err := r.Begin("add", "x", true); !errors.Is(err, errBoom) {
		t.Errorf("queued failure after ResetOps = %v, want boom", err)
	}
	want := []string{"later", "add x: boom"}
	if diff := cmp.Diff(want, l.Ops()); diff != "" {
		t.Errorf("Ops (-want +got):\n%s", diff)
	}
	if got := l.Calls("add"); got != 1 {
		t.Errorf("Calls(add) = %d, want 1", got)
	}
}

// TestConcurrentUse runs under -race: calls, reads of the log and resets from many goroutines,
// with a hook that is called outside the log's lock.
func TestConcurrentUse(t *testing.T) {
	l, r := New(MarkError)
	l.SetHook(func(op, _ string) error {
		if op == "fail" {
			return errBoom
		}
		return nil
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				op := "ok"
				if i%2 == 1 {
					op = "fail"
				}
				c, err := r.Begin(op, fmt.Sprint(g, i), true)
				_ = c.Done(err)
				_ = l.Ops()
				_ = l.Calls(op)
			}
		})
	}
	wg.Wait()
	if got, n := l.Calls("ok")+l.Calls("fail"), len(l.Ops()); got != 400 || n != 400 {
		t.Errorf("Calls = %d, lines = %d; want 400 each", got, n)
	}
	wg.Go(func() { l.ResetOps() })
	wg.Wait()
	if len(l.Ops()) != 0 {
		t.Errorf("ResetOps kept %d lines", len(l.Ops()))
	}
}

// table is the smallest fake: keys set with Set, read with Get. leaky changes the table
// before it asks the log, the mistake CheckInjection must catch.
type table struct {
	*Log
	rec   *Recorder
	mu    sync.Mutex
	keys  map[string]bool
	leaky bool
}

func newTable(leaky bool) *table {
	l, r := New(MarkError)
	return &table{Log: l, rec: r, keys: map[string]bool{}, leaky: leaky}
}

func (f *table) Set(k string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leaky {
		f.keys[k] = true
	}
	if _, err := f.rec.Begin("set", k, true); err != nil {
		return err
	}
	f.keys[k] = true
	return nil
}

func (f *table) Get(k string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.rec.Begin("get", k, false)
	return err
}

func (f *table) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprint(f.keys)
}

// spy records what a check reports instead of failing the test.
type spy struct {
	testing.TB
	errs []string
}

func (s *spy) Helper() {}
func (s *spy) Errorf(format string, args ...any) {
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func TestCheckInjection(t *testing.T) {
	tests := []struct {
		name     string
		leaky    bool
		record   bool // what the calls claim about being recorded
		wantErrs int
	}{
		{name: "a sound fake passes", record: true},
		{name: "a fake that changes state first is caught", leaky: true, record: true, wantErrs: 1},
		{name: "a wrong claim about the log is caught", record: false, wantErrs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTable(tt.leaky)
			s := &spy{TB: t}
			CheckInjection(s, f.Log, f.Dump, []Injection{
				{Op: "set", Target: "a", Record: tt.record, Call: func() error { return f.Set("a") }},
				{Op: "get", Target: "a", Call: func() error { return f.Get("a") }},
			})
			if len(s.errs) != tt.wantErrs {
				t.Errorf("CheckInjection reported %d errors, want %d:\n%q", len(s.errs), tt.wantErrs, s.errs)
			}
			if err := f.Set("b"); err != nil {
				t.Errorf("the hook outlived CheckInjection: %v", err)
			}
		})
	}
}
