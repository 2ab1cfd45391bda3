package e2e

// The soak's endpoint churn fault: for 10-20 s, EndpointSlice updates of the churned
// Services at churnRate writes a second (the rate reached is measured and reported), as a
// rolling update of a large Deployment or a flapping readiness probe makes them. Nothing
// kubevs keeps for the fixed Services changes: their traffic must go on, no new connection
// failing during the churn, and once it stops the kernel must be exact within the slack.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// churnRate is the endpoint churn's target, writes a second; churnWorkers write in parallel
// (a write takes tens of milliseconds in the emulated guest, seconds when the host is loaded:
// more writers only crowd the guest's two CPUs).
const (
	churnRate    = 100
	churnWorkers = 8
	// minChurned is how many churned Services the endpoint churn spreads its writes over.
	minChurned = 8
)

// fastClient is an admin client without the bed client's rate limit (100 a second), speaking
// protobuf, for the churn and the cold sync's thousands of objects.
func (s *soak) fastClient() (kubernetes.Interface, error) {
	cfg := rest.CopyConfig(s.f.Bed.RESTConfig)
	cfg.QPS, cfg.Burst = 5000, 5000
	// Protobuf, not JSON: less of the guest's CPU in kube-apiserver and here per object, the
	// CPU that bounds the rate (see apiMeter).
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("soak's unthrottled client: %w", err)
	}
	return c, nil
}

// enoughChurned creates churned Services until minChurned exist, and waits until kubevs has
// them.
func (s *soak) enoughChurned(ctx context.Context) error {
	if len(s.churn.svcs) >= minChurned {
		return nil
	}
	for len(s.churn.svcs) < minChurned {
		if err := s.churn.createService(ctx); err != nil {
			return err
		}
		s.churn.ops++
	}
	s.expectInSync(ctx, "after creating the Services the endpoint churn rewrites")
	return nil
}

// endpointChurn rewrites the churned Services' EndpointSlices at churnRate for 10-20 s.
func (s *soak) endpointChurn(ctx context.Context) (string, error) {
	client, err := s.fastClient()
	if err != nil {
		return "", err
	}
	d := time.Duration(10+s.rng.IntN(11)) * time.Second
	st, err := s.churn.rewriteSlices(ctx, client, churnRate, d)
	s.churn.ops += st.writes
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d EndpointSlice writes to %d Services in %s: %.1f writes/s, %.1f endpoint changes/s (target %d/s; a write took %s median, %s at most; %d ticks found all %d writers busy)",
		st.writes, len(s.churn.svcs), st.took.Round(100*time.Millisecond), float64(st.writes)/st.took.Seconds(), float64(st.changes)/st.took.Seconds(), churnRate,
		st.median().Round(time.Millisecond), st.longest().Round(time.Millisecond), st.dropped, churnWorkers), nil
}

// churnStats measures one endpoint churn.
type churnStats struct {
	writes, dropped int
	changes         int // endpoints added, removed or flipped in readiness, over all writes
	took            time.Duration
	latencies       []time.Duration
}

func (c *churnStats) median() time.Duration {
	if len(c.latencies) == 0 {
		return 0
	}
	l := slices.Clone(c.latencies)
	slices.Sort(l)
	return l[len(l)/2]
}

func (c *churnStats) longest() time.Duration {
	if len(c.latencies) == 0 {
		return 0
	}
	return slices.Max(c.latencies)
}

// rewriteSlices updates the EndpointSlice of a random churned Service every 1/rate s for d,
// from churnWorkers goroutines (each with its own RNG drawn from c.rng). A tick that finds
// every worker busy is dropped and counted: the rate reached is writes/took.
func (c *churner) rewriteSlices(ctx context.Context, client kubernetes.Interface, rate int, d time.Duration) (st churnStats, err error) {
	names := keysOf(c.svcs)
	if len(names) == 0 {
		return st, errors.New("endpoint churn: no churned Service")
	}
	jobs := make(chan string, churnWorkers)
	var mu sync.Mutex
	last := map[string]*discoveryv1.EndpointSlice{} // what each Service's slice holds, as far as the churn knows
	var errs []error
	var wg sync.WaitGroup
	for i := range churnWorkers {
		rng := rand.New(rand.NewPCG(c.rng.Uint64(), uint64(i)))
		wg.Go(func() {
			for name := range jobs {
				slice := c.sliceWith(name, rng, remoteEndpoints)
				start := time.Now()
				err := putSlice(ctx, client, slice, true)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					st.writes++
					if prev := last[name]; prev != nil { // the slice before the churn's first write is unknown here
						st.changes += endpointChanges(prev, slice)
					}
					last[name] = slice
					st.latencies = append(st.latencies, time.Since(start))
				}
				mu.Unlock()
			}
		})
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		<-tick.C
		select {
		case jobs <- names[c.rng.IntN(len(names))]:
		default:
			st.dropped++
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	st.took = time.Since(start)
	if len(errs) > 0 {
		err = fmt.Errorf("endpoint churn: %d writes failed, first: %w", len(errs), errs[0])
	}
	return st, errors.Join(err, ctx.Err())
}

// trafficWentOn fails the fault for each new connection to a fixed Service that failed in
// its window (the soak's own stalls excepted: see stallWatch): nothing of theirs changed.
func (s *soak) trafficWentOn(_ context.Context, r *faultResult) (string, error) {
	var errs []error
	starved := 0
	syncs := proxierSyncs(s.f.Bed.LogDir)
	for _, p := range s.probes {
		failed, _ := p.failures(r.from, r.to)
		for _, a := range failed {
			if s.stalls.starved(a) {
				starved++
				continue
			}
			errs = append(errs, fmt.Errorf("%s failed at %s during the endpoint churn: %w\n    %s", p.name, a.start.Format("15:04:05.000"), a.err, s.explain(a, syncs)))
		}
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	detail := "traffic went on"
	if starved > 0 {
		detail += fmt.Sprintf(" (%d attempts starved by the guest, not counted)", starved)
	}
	return detail, errors.Join(errs...)
}
