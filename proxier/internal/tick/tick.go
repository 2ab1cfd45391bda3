// Package tick runs a function on a ticker until its context ends: the proxier's periodic
// chores (the registration GC, the memory releaser) share it.
package tick

import (
	"context"
	"time"

	"k8s.io/utils/clock"
)

// Every calls fn every interval on clk until ctx is done.
func Every(ctx context.Context, clk clock.WithTicker, interval time.Duration, fn func(context.Context)) {
	t := clk.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			fn(ctx)
		}
	}
}
