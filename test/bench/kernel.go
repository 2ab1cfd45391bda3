package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Kernel reads the IPVS table over netlink, as the benchmark's observer: it only reads,
// except Flush.
type Kernel struct {
	IPVS ipvs.Interface
}

// CountPresent lists every virtual server (one netlink dump) and counts those in want.
func (k Kernel) CountPresent(want map[ipvs.Key]bool) (present, total int, err error) {
	vss, err := k.IPVS.VirtualServers()
	if err != nil {
		return 0, 0, fmt.Errorf("list virtual servers: %w", err)
	}
	for _, vs := range vss {
		if want[vs.Key] {
			present++
		}
	}
	return present, len(vss), nil
}

// WaitAll polls every interval until every key of want is a virtual server, and returns
// when that was first seen. onPoll, if set, is called after each poll with the count.
func (k Kernel) WaitAll(ctx context.Context, want map[ipvs.Key]bool, interval time.Duration, onPoll func(present int)) (time.Time, error) {
	for {
		present, _, err := k.CountPresent(want)
		now := time.Now()
		if err != nil {
			return now, err
		}
		if onPoll != nil {
			onPoll(present)
		}
		if present == len(want) {
			return now, nil
		}
		select {
		case <-ctx.Done():
			return now, fmt.Errorf("%d of %d virtual servers present: %w", present, len(want), ctx.Err())
		case <-time.After(interval):
		}
	}
}

// HasRealServer reports whether rs is a real server of the virtual server key: one
// targeted netlink GET of that virtual server's destinations. An absent virtual server is
// not an error (false).
func (k Kernel) HasRealServer(key ipvs.Key, rs netip.AddrPort) (bool, error) {
	rss, err := k.IPVS.RealServers(key)
	if errors.Is(err, ipvs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("list real servers of %s: %w", key, err)
	}
	for _, r := range rss {
		if r.AddrPort() == rs {
			return true, nil
		}
	}
	return false, nil
}

// WaitRealServer polls HasRealServer every interval until it holds and returns when it was
// first seen; ctx bounds the wait.
func (k Kernel) WaitRealServer(ctx context.Context, key ipvs.Key, rs netip.AddrPort, interval time.Duration) (time.Time, error) {
	for {
		ok, err := k.HasRealServer(key, rs)
		now := time.Now()
		if err != nil || ok {
			return now, err
		}
		select {
		case <-ctx.Done():
			return now, fmt.Errorf("real server %s of %s: %w", rs, key, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// WaitTargets polls the real servers still missing, each with a targeted GET, every interval
// until none is missing or ctx ends; it returns when the last was seen and what is still
// missing (nil error on a ctx that ended: the caller reports what is missing).
func (k Kernel) WaitTargets(ctx context.Context, pending []Target, interval time.Duration) (time.Time, []Target, error) {
	pending = slices.Clone(pending)
	for {
		rest := pending[:0]
		for _, t := range pending {
			ok, err := k.HasRealServer(t.Key, t.RS)
			if err != nil {
				return time.Now(), pending, err
			}
			if !ok {
				rest = append(rest, t)
			}
		}
		pending = rest
		now := time.Now()
		if len(pending) == 0 {
			return now, nil, nil
		}
		select {
		case <-ctx.Done():
			return now, pending, nil
		case <-time.After(interval):
		}
	}
}

// Flush deletes every virtual server and returns how many there were. The benchmark runs
// in its own guest, where every virtual server is a proxier's leftover.
func (k Kernel) Flush() (int, error) {
	vss, err := k.IPVS.VirtualServers()
	if err != nil {
		return 0, fmt.Errorf("list virtual servers: %w", err)
	}
	var errs []error
	for _, vs := range vss {
		if err := k.IPVS.DeleteVirtualServer(vs.Key); err != nil && !errors.Is(err, ipvs.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete virtual server %s: %w", vs.Key, err))
		}
	}
	return len(vss), errors.Join(errs...)
}
