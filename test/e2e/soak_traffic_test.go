package e2e

// Traffic for the soak (soak_test.go): probes that open a new connection (or a new UDP
// socket) every probeEvery and remember when each attempt started and how it ended, so the
// soak can tell whether a path works again after a fault and count the attempts that failed
// inside and outside fault windows; and established flows (flow, takeover_traffic_test.go)
// kept open through every fault, re-opened and counted when one breaks.

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// probeEvery paces each probe: a few new connections a second per path is enough to time a
// repair to a fraction of a second without loading the emulated guest.
const probeEvery = 500 * time.Millisecond

// probeTimeout bounds one probe attempt: shorter than perTry, so a path that drops packets
// (a flushed masquerade rule) is seen failing within two seconds.
const probeTimeout = 2 * time.Second

// attempt is one probe attempt.
type attempt struct {
	start, end time.Time
	err        error
}

// probe opens new connections along one path until its context ends.
type probe struct {
	name string
	do   func(ctx context.Context) error

	mu       sync.Mutex
	attempts []attempt
}

func (p *probe) run(ctx context.Context) {
	for ctx.Err() == nil {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := p.do(actx)
		cancel()
		if ctx.Err() != nil {
			return // cut short by the end of the soak, not a failure
		}
		p.mu.Lock()
		p.attempts = append(p.attempts, attempt{start: start, end: time.Now(), err: err})
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(probeEvery):
		}
	}
}

// okSince reports whether an attempt that started at or after t succeeded.
func (p *probe) okSince(t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.attempts) - 1; i >= 0 && !p.attempts[i].start.Before(t); i-- {
		if p.attempts[i].err == nil {
			return true
		}
	}
	return false
}

// failures returns the attempts that started in [from, to) and failed, and how many started.
func (p *probe) failures(from, to time.Time) (failed []attempt, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.attempts {
		if a.start.Before(from) || !a.start.Before(to) {
			continue
		}
		total++
		if a.err != nil {
			failed = append(failed, a)
		}
	}
	return failed, total
}

// counts returns the attempts made and failed so far.
func (p *probe) counts() (attempted, failed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.attempts {
		if a.err != nil {
			failed++
		}
	}
	return len(p.attempts), failed
}

// httpProbe GETs url from src and wants one of the backends' names.
func httpProbe(name string, src Source, url string, backends ...string) *probe {
	return &probe{name: name, do: func(ctx context.Context) error {
		got, err := Get(ctx, src, url)
		return wantOneOf(got, err, backends)
	}}
}

// echoProbe sends "hostname" over network to addr from src and wants one of the backends.
func echoProbe(name string, src Source, network, addr string, backends ...string) *probe {
	return &probe{name: name, do: func(ctx context.Context) error {
		got, err := Echo(ctx, src, network, addr, "hostname")
		return wantOneOf(got, err, backends)
	}}
}

func wantOneOf(got string, err error, backends []string) error {
	if err != nil {
		return err
	}
	for _, b := range backends {
		if got == b {
			return nil
		}
	}
	return fmt.Errorf("answered by %q, not one of %v", got, backends)
}

// breakage is an established flow that broke.
type breakage struct {
	at  time.Time
	err error
}

// keeper keeps one established flow open: when it breaks it records why and opens another.
type keeper struct {
	name string
	// via is the virtual server the flow goes through, "tcp IP:PORT" (faultResult.ends).
	via  string
	open func(ctx context.Context) (*flow, error)

	mu     sync.Mutex
	breaks []breakage
	rounds int64 // exchanges of the flows that ended
	cur    *flow
}

func (k *keeper) run(ctx context.Context) {
	for ctx.Err() == nil {
		fl, err := k.open(ctx)
		if err != nil {
			if ctx.Err() == nil {
				k.record(fmt.Errorf("re-open: %w", err))
			}
			continue
		}
		k.mu.Lock()
		k.cur = fl
		k.mu.Unlock()
		fl.run(ctx)
		k.mu.Lock()
		k.rounds += fl.rounds.Load()
		k.cur = nil
		k.mu.Unlock()
		if err := fl.failure(); err != nil {
			k.record(err)
		}
	}
}

func (k *keeper) record(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.breaks = append(k.breaks, breakage{at: time.Now(), err: err})
}

// breaksIn returns the breakages seen in [from, to).
func (k *keeper) breaksIn(from, to time.Time) []breakage {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []breakage
	for _, b := range k.breaks {
		if !b.at.Before(from) && b.at.Before(to) {
			out = append(out, b)
		}
	}
	return out
}

// summary is the flow's exchanges and breakages so far.
func (k *keeper) summary() (rounds int64, breaks int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	rounds = k.rounds
	if k.cur != nil {
		rounds += k.cur.rounds.Load()
	}
	return rounds, len(k.breaks)
}
