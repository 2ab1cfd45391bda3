package status

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// A batch of reads longer than the step timeout is no timeout while each read answers
// within it: the deadline bounds one read, as --step-timeout says, not the whole batch.
func TestEachBoundsEachReadNotTheBatch(t *testing.T) {
	r, err := newReader(context.Background(), time.Second)
	must(t, err)
	defer r.close()
	var ran []int
	err = r.each(6, func(i int) string { return fmt.Sprint("read ", i) }, func(i int) error {
		time.Sleep(300 * time.Millisecond) // 1.8 s in all
		ran = append(ran, i)
		return nil
	})
	if err != nil || len(ran) != 6 {
		t.Errorf("each = %v after reads %v; want nil after all 6", err, ran)
	}
	if n := r.handoffs.Load(); n != 1 {
		t.Errorf("%d jobs handed to the worker, want 1", n)
	}
}

// The read that does not answer is named, and the reads after it never run.
func TestEachNamesTheStuckRead(t *testing.T) {
	r, err := newReader(context.Background(), 300*time.Millisecond)
	must(t, err)
	defer r.close()
	release := make(chan struct{})
	after := make(chan int, 10)
	start := time.Now()
	err = r.each(5, func(i int) string { return fmt.Sprint("read ", i) }, func(i int) error {
		if i == 2 {
			<-release
		}
		if i > 2 {
			after <- i
		}
		return nil
	})
	var te *TimeoutError
	if !errors.As(err, &te) || te.Check != "read 2" || te.After < 300*time.Millisecond {
		t.Fatalf("each = %v; want a timeout of %q after 300ms or more", err, "read 2")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v with a step of 300ms", d)
	}
	close(release) // the stuck read answers late: the abandoned batch must stop there
	select {
	case i := <-after:
		t.Errorf("read %d ran after the batch was abandoned", i)
	case <-time.After(200 * time.Millisecond):
	}
}

// The first error ends the batch and is returned as it is.
func TestEachStopsAtTheFirstError(t *testing.T) {
	r, err := newReader(context.Background(), time.Second)
	must(t, err)
	defer r.close()
	boom := errors.New("boom")
	n := 0
	err = r.each(4, func(i int) string { return fmt.Sprint("read ", i) }, func(i int) error {
		n++
		if i == 1 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 2 {
		t.Errorf("each = %v after %d reads; want boom after 2", err, n)
	}
	if err := r.each(0, nil, nil); err != nil {
		t.Errorf("each of nothing = %v", err)
	}
}

// The run's context ends a batch too, naming the read in progress.
func TestEachEndsWithTheContext(t *testing.T) {
	ctx := newExpiring()
	r, err := newReader(ctx, time.Hour)
	must(t, err)
	defer r.close()
	s := newStuck(t)
	err = r.each(3, func(i int) string { return fmt.Sprint("read ", i) }, func(i int) error {
		if i == 1 {
			ctx.expire()
			s.wait()
		}
		return nil
	})
	var te *TimeoutError
	if !errors.As(err, &te) || te.Check != "read 1" {
		t.Errorf("each = %v; want a timeout naming %q", err, "read 1")
	}
}
