package apiretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestLoaded(t *testing.T) {
	gr := schema.GroupResource{Resource: "services"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"429", apierrors.NewTooManyRequests("slow down", 1), true},
		{"server timeout", apierrors.NewServerTimeout(gr, "create", 1), true},
		{"timeout", apierrors.NewTimeoutError("took too long", 1), true},
		{"500", apierrors.NewInternalError(errors.New("etcd")), true},
		{"503", apierrors.NewServiceUnavailable("starting"), true},
		{"EOF", fmt.Errorf("post: %w", io.EOF), true},
		{"unexpected EOF", fmt.Errorf("post: %w", io.ErrUnexpectedEOF), true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"stream reset", errors.New("stream error: stream ID 3; INTERNAL_ERROR; received from peer"), true},
		{"health check", errors.New("http2: client connection lost"), true},
		{"net timeout", fmt.Errorf("dial: %w", timeoutErr{}), true},
		{"nil", nil, false},
		{"conflict", apierrors.NewConflict(gr, "a", errors.New("changed")), false},
		{"exists", apierrors.NewAlreadyExists(gr, "a"), false},
		{"invalid", apierrors.NewBadRequest("bad port"), false},
		{"not found", apierrors.NewNotFound(gr, "a"), false},
	} {
		if got := Loaded(tc.err); got != tc.want {
			t.Errorf("%s: Loaded(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestDo(t *testing.T) {
	loaded := apierrors.NewTooManyRequests("slow down", 1)
	fails := func(k int, err error, calls *int) func() error {
		return func() error {
			*calls++
			if *calls <= k {
				return err
			}
			return nil
		}
	}
	fast := Backoff{First: time.Millisecond, Max: 2 * time.Millisecond}
	for _, tc := range []struct {
		name      string
		b         Backoff
		failFirst int
		err       error
		wantCalls int
		wantErr   bool
	}{
		{"success at once", fast, 0, loaded, 1, false},
		{"loaded twice, then success", fast, 2, loaded, 3, false},
		{"not loaded: no retry", fast, 5, apierrors.NewBadRequest("bad"), 1, true},
		{"tries bound", Backoff{First: time.Millisecond, Tries: 3}, 10, loaded, 3, true},
		{"budget bound", Backoff{First: 40 * time.Millisecond, Budget: 50 * time.Millisecond}, 10, loaded, 2, true},
	} {
		calls := 0
		err := tc.b.Do(context.Background(), fails(tc.failFirst, tc.err, &calls))
		if calls != tc.wantCalls || (err != nil) != tc.wantErr {
			t.Errorf("%s: %d calls, err %v; want %d calls, error %v", tc.name, calls, err, tc.wantCalls, tc.wantErr)
		}
	}
}

func TestDoStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Backoff{First: time.Hour}.Do(ctx, func() error {
		calls++
		cancel()
		return apierrors.NewServiceUnavailable("starting")
	})
	if calls != 1 || !errors.Is(err, context.Canceled) || !apierrors.IsServiceUnavailable(err) {
		t.Errorf("%d calls, err %v; want 1 call, the 503 joined with context.Canceled", calls, err)
	}
}

func TestEachStopsAtFirstError(t *testing.T) {
	var ran atomic.Int32
	err := Each(context.Background(), 1000, 4, func(ctx context.Context, i int) error {
		ran.Add(1)
		if i == 5 {
			return fmt.Errorf("item %d", i)
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "item 5") {
		t.Errorf("err = %v, want item 5", err)
	}
	if ran.Load() == 1000 {
		t.Error("every item ran after an error")
	}
	seen := make([]atomic.Int32, 50)
	if err := Each(context.Background(), 50, 8, func(_ context.Context, i int) error { seen[i].Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if seen[i].Load() != 1 {
			t.Errorf("item %d ran %d times", i, seen[i].Load())
		}
	}
}

func TestEachReportsTheCallersContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ran atomic.Int32
	err := Each(ctx, 10, 2, func(context.Context, int) error { ran.Add(1); return nil })
	if !errors.Is(err, context.Canceled) || ran.Load() != 0 {
		t.Errorf("err %v after %d items, want context.Canceled and none run", err, ran.Load())
	}
}
