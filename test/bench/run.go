package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/test/apiretry"
	"github.com/kubevs/kubevs/test/bed"
)

// Config sizes a run.
type Config struct {
	// Services (N) and Endpoints per Service.
	Services, Endpoints int
	// Changes (K) single changes, then a Burst of changes.
	Changes, Burst int
	// Idle is the quiet period over which idle CPU is measured.
	Idle time.Duration
	// ChangeTimeout bounds the wait for one change; ChangeBudget the whole series of single
	// changes (the rest are left out, and the report says so); ColdTimeout the cold sync;
	// BurstTimeout the burst's convergence.
	ChangeTimeout, ChangeBudget, ColdTimeout, BurstTimeout time.Duration
	// Writers is the number of parallel API writers of the changes and the burst;
	// SetupWriters, of the objects written before the proxiers start (0: Writers).
	Writers, SetupWriters int
	// Preloaded says the host's half wrote the Services and slices before this run began
	// (ServeControlPlane with a Preload): Run adopts them (AdoptCluster) instead.
	Preloaded bool
	// Seed picks the changed Services.
	Seed uint64
	// Proxiers run in order.
	Proxiers []Proxier
	// Floor measures the raw netlink floor after the proxiers (see MeasureFloor).
	Floor bool
	// Sweep clears netfilter, ipsets and kube-ipvs0 after each proxier's cleanup (see Sweep).
	Sweep bool
	// TrashSettle is how long to wait after a proxier's virtual servers are gone before the
	// next proxier or the floor starts. The kernel keeps each deleted real server in a trash
	// list for 2-3 minutes (IP_VS_DEST_TRASH_PERIOD, 120 s, checked every 60 s) and scans
	// the whole list on every real server add (ip_vs_trash_get_dest): right after 100,000
	// were deleted, a cold sync of 10,000 Services took 3m24s instead of under one minute.
	TrashSettle time.Duration
	// sleep waits (time.Sleep unless a test sets it).
	sleep func(context.Context, time.Duration)
	// Progress, if set, is called with the report so far after each phase (the harness
	// writes the files, so that a run cut short still leaves its figures).
	Progress func(*Report)
	// LogDir receives the proxiers' logs.
	LogDir string
	// Profile, when positive, saves CPU profiles of each proxier that serves them into
	// LogDir: its first Profile after the start (the cold sync) and the idle period.
	Profile time.Duration
}

// settle waits d or until ctx is done.
func (c Config) settle(ctx context.Context, d time.Duration) {
	if c.sleep != nil {
		c.sleep(ctx, d)
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Poll intervals: a change is polled with one targeted GET every changePoll; the cold sync
// and the burst list more, and less often.
const (
	changePoll = 2 * time.Millisecond
	coldPoll   = 250 * time.Millisecond
	burstPoll  = 50 * time.Millisecond
)

// Run writes the cluster, then measures each proxier in turn (see the package comment). It
// returns the report even when a proxier failed (its Result says so); the error is for a
// run that could not happen at all.
func Run(ctx context.Context, cfg Config, client kubernetes.Interface, k ipvs.Interface, rep *Report) error {
	logger := klog.FromContext(ctx)
	kernel := Kernel{IPVS: k}
	if n, err := kernel.Flush(); err != nil {
		return fmt.Errorf("the guest must start with no virtual server: %d found: %w", n, err)
	} else if n > 0 {
		return fmt.Errorf("the guest must start with no virtual server: %d found", n)
	}
	start := time.Now()
	var cluster *Cluster
	var err error
	if cfg.Preloaded {
		cluster, err = AdoptCluster(ctx, client, cfg.Services, cfg.Endpoints)
	} else {
		cluster, err = CreateCluster(ctx, client, cfg.Services, cfg.Endpoints, cmp.Or(cfg.SetupWriters, cfg.Writers))
	}
	if err != nil {
		return err
	}
	if !cfg.Preloaded {
		rep.SetupMS = ms(time.Since(start))
	}
	logger.Info("Cluster ready", "services", cfg.Services, "endpoints", cfg.Services*cfg.Endpoints, "preloaded", cfg.Preloaded, "elapsed", time.Since(start))
	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	progress := func() {
		if cfg.Progress != nil {
			cfg.Progress(rep)
		}
	}
	for i, p := range cfg.Proxiers {
		rep.Results = append(rep.Results, Result{Proxier: p.Name})
		res := &rep.Results[len(rep.Results)-1]
		pctx := klog.NewContext(ctx, klog.LoggerWithValues(logger, "proxier", p.Name))
		if err := measure(pctx, cfg, cluster, kernel, p, rng, res, progress); err != nil {
			res.Error = err.Error()
			logger.Error(err, "Proxier run failed", "proxier", p.Name)
		}
		progress()
		if err := p.cleanup(ctx, cfg.LogDir); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s cleanup: %v", p.Name, err))
		}
		n, err := kernel.Flush()
		if err != nil {
			return fmt.Errorf("flush after %s: %w", p.Name, err)
		}
		if n > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s left %d virtual servers after its cleanup; the benchmark deleted them", p.Name, n))
		}
		if cfg.Sweep {
			left, err := Sweep(ctx)
			if err != nil {
				return fmt.Errorf("sweep after %s: %w", p.Name, err)
			}
			if !left.Zero() {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s left %s after its cleanup; the benchmark removed them", p.Name, left))
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if last := i == len(cfg.Proxiers)-1; cfg.TrashSettle > 0 && (!last || cfg.Floor) {
			logger.Info("Waiting for the kernel to free the deleted real servers", "after", p.Name, "wait", cfg.TrashSettle)
			cfg.settle(ctx, cfg.TrashSettle)
			rep.Notes = append(rep.Notes, fmt.Sprintf("waited %s after %s's virtual servers were gone, for the kernel's trash of deleted real servers to empty", cfg.TrashSettle, p.Name))
		}
	}
	if cfg.Floor {
		f, err := MeasureFloor(k, cfg.Services, cfg.Endpoints)
		if err != nil {
			return err
		}
		// A missing ipset binary leaves the figure out, not the floor.
		if d, err := MeasureExec(ctx, execRuns, "ipset", "list", "-n"); err == nil {
			f.IPSetExecMS = ms(d)
		} else {
			logger.Error(err, "Time ipset processes")
		}
		rep.Floor = &f
		progress()
	}
	return nil
}

// measure runs one proxier through the phases, filling res as it goes; it always stops the
// proxier.
func measure(ctx context.Context, cfg Config, cluster *Cluster, kernel Kernel, p Proxier, rng *rand.Rand, res *Result, progress func()) error {
	logger := klog.FromContext(ctx)
	res.Version = p.Version(ctx)
	proc, err := bed.StartProcess(ctx, cfg.LogDir, p.Name, p.Binary, p.Args...)
	if err != nil {
		return err
	}
	defer func() {
		if err := proc.Stop(30 * time.Second); err != nil {
			logger.Error(err, "Stop proxier")
		}
	}()
	ctx, cancel := watchExit(ctx, proc)
	defer cancel()
	t0 := time.Now()
	coldProfile, coldNoted := profile(ctx, cfg, p, "cold", cfg.Profile), false
	noteCold := func() { // once: at the idle phase, or at the end of a run cut short
		if !coldNoted {
			coldNoted = true
			res.Note = joinNote(res.Note, coldProfile())
		}
	}
	defer noteCold()

	// 1. Cold sync: every virtual server, then every real server and the first sync the
	// proxier reports (kube-proxy goes on with ipset and iptables work after its last
	// virtual server; the single changes start from a settled proxier).
	coldCtx, coldCancel := context.WithTimeout(ctx, cfg.ColdTimeout)
	defer coldCancel()
	last := time.Now()
	seen, err := kernel.WaitAll(coldCtx, cluster.Keys(), coldPoll, func(present int) {
		if time.Since(last) > 10*time.Second {
			logger.Info("Cold sync", "present", present, "want", len(cluster.VIPs), "elapsed", time.Since(t0).Round(time.Second))
			last = time.Now()
		}
	})
	if err != nil {
		return fmt.Errorf("cold sync: %w", exitCause(err, proc))
	}
	cpu, err := ReadProc(proc.PID())
	if err != nil {
		return err
	}
	res.ColdMS, res.ColdCPUMS = ms(seen.Sub(t0)), ms(cpu.CPU)
	logger.Info("Virtual servers present", "wall", seen.Sub(t0), "cpu", cpu.CPU)
	progress()
	seen, missing, err := kernel.WaitTargets(coldCtx, cluster.Targets(), coldPoll)
	if err == nil && len(missing) > 0 {
		err = fmt.Errorf("%d real servers missing, e.g. %s of %s: %w", len(missing), missing[0].RS, missing[0].Key, coldCtx.Err())
	}
	if err != nil {
		return fmt.Errorf("cold sync: %w", exitCause(err, proc))
	}
	for {
		// A metrics page not served yet is polled again, as no sync reported. A page that
		// is slow to serve (kubevs's per-Service counters at 10,000 Services) is polled
		// less often, so that the scrapes stay a small part of the proxier's CPU.
		scraped := time.Now()
		n, err := syncCount(coldCtx, p.MetricsURL)
		if err == nil && n > 0 {
			break
		}
		select {
		case <-coldCtx.Done():
			dump(ctx, p, cfg.LogDir, "cold")
			if err == nil {
				err = fmt.Errorf("%v syncs counted", n)
			}
			return fmt.Errorf("cold sync: no sync reported (last scrape: %w): %w", err, exitCause(coldCtx.Err(), proc))
		case <-time.After(ScrapePause(time.Since(scraped))):
		}
		seen = time.Now()
	}
	if cpu, err = ReadProc(proc.PID()); err != nil {
		return err
	}
	res.SettledMS, res.SettledCPUMS = ms(seen.Sub(t0)), ms(cpu.CPU)
	logger.Info("Cold sync done", "wall", seen.Sub(t0), "cpu", cpu.CPU)
	progress()
	coldCancel()
	fullFrom, fullFromSec, err := fullSyncs(ctx, p.MetricsURL)
	if err != nil {
		return err
	}
	readFrom, readFromSec, err := resyncReads(ctx, p.MetricsURL)
	if err != nil {
		return err
	}

	// 2. Single changes, one at a time, each bounded by the change timeout or, for a
	// proxier whose syncs are slower than that, by a few of its syncs.
	changeTimeout := ChangeTimeout(cfg.ChangeTimeout, fullFrom, fullFromSec)
	if changeTimeout > cfg.ChangeTimeout {
		res.Note = joinNote(res.Note, fmt.Sprintf("change timeout %s (%dx its mean sync of %s so far, within the change budget)",
			changeTimeout.Round(time.Second), syncsPerChange, (changeTimeout/syncsPerChange).Round(time.Second)))
	}
	var lat []time.Duration
	timeouts, waited := 0, time.Duration(0)
	budget := time.Now().Add(cfg.ChangeBudget)
	for i := range cfg.Changes {
		if time.Now().After(budget) {
			res.Note = joinNote(res.Note, fmt.Sprintf("change budget %s spent after %d of %d changes", cfg.ChangeBudget, i, cfg.Changes))
			break
		}
		key, rs, err := cluster.AddEndpoint(ctx, rng.IntN(len(cluster.VIPs)))
		if err != nil {
			return err
		}
		written := time.Now()
		bound := ChangeBound(changeTimeout, cfg.ChangeTimeout, time.Until(budget))
		wctx, wcancel := context.WithTimeout(ctx, bound)
		at, err := kernel.WaitRealServer(wctx, key, rs, changePoll)
		wcancel()
		switch {
		case err == nil:
			lat = append(lat, at.Sub(written))
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			timeouts++
			waited = max(waited, bound)
			if timeouts == 1 {
				dump(ctx, p, cfg.LogDir, fmt.Sprintf("change%d", i))
			}
		default:
			return fmt.Errorf("change %d: %w", i, exitCause(err, proc))
		}
		logger.Info("Change", "n", i, "latency", at.Sub(written), "seen", err == nil)
	}
	res.Change = Summarize(lat, timeouts, waited)
	logger.Info("Single changes done", "summary", res.Change)
	progress()

	// 3. A burst. One that did not converge in time is the result's error, but the idle
	// and memory figures are still taken (with a note: the proxier may still be at work).
	var burstErr error
	if cfg.Burst > 0 {
		if err := burst(ctx, cfg, cluster, kernel, p, rng, res); err != nil {
			if ctx.Err() != nil || res.BurstMissing == 0 {
				return exitCause(err, proc)
			}
			burstErr = err
			res.Note = joinNote(res.Note, "idle CPU measured after a burst that had not converged")
			logger.Error(err, "Burst did not converge; idle and memory are still measured")
		} else {
			logger.Info("Burst done", "converged", res.BurstMS, "syncs", res.BurstSyncs)
		}
		progress()
	}

	// 4. Idle. One CPU profile at a time: the cold one may still run when the phases
	// before were shorter than cfg.Profile.
	noteCold()
	kindsFrom, err := readKinds(ctx, p.MetricsURL)
	if err != nil {
		return err
	}
	from, err := ReadProc(proc.PID())
	if err != nil {
		return err
	}
	idleProfile := profile(ctx, cfg, p, "idle", cfg.Idle)
	select {
	case <-ctx.Done():
		return exitCause(ctx.Err(), proc)
	case <-time.After(cfg.Idle):
	}
	// The idle period ends here: the heap profile (a collection, then the dump) is not
	// idle work.
	to, err := ReadProc(proc.PID())
	if err != nil {
		return err
	}
	mem, err := goHeap(ctx, p.MetricsURL)
	if err != nil {
		return err
	}
	res.HeapInuseMiB, res.HeapGoalMiB = mem.inuse/(1<<20), mem.goal/(1<<20)
	res.HeapFreeMiB, res.RuntimeMiB, res.MemoryReleases = mem.free/(1<<20), mem.runtime/(1<<20), int(mem.releases)
	kindsTo, err := readKinds(ctx, p.MetricsURL)
	if err != nil {
		return err
	}
	res.Note = joinNote(res.Note, readKindsNote(fmt.Sprintf("idle %s:", cfg.Idle), kindsFrom, kindsTo))
	res.Note = joinNote(res.Note, idleProfile())
	res.Note = joinNote(res.Note, heapProfile(ctx, cfg, p))
	res.IdleCPUPct = CPUPercent(from, to)
	fullTo, fullToSec, err := fullSyncs(ctx, p.MetricsURL)
	if err != nil {
		return err
	}
	if res.FullSyncs = fullTo - fullFrom; res.FullSyncs > 0 {
		res.FullSyncMeanMS = 1000 * (fullToSec - fullFromSec) / res.FullSyncs
	}
	readTo, readToSec, err := resyncReads(ctx, p.MetricsURL)
	if err != nil {
		return err
	}
	if res.ResyncReads = readTo - readFrom; res.ResyncReads > 0 {
		res.ResyncReadMeanMS = 1000 * (readToSec - readFromSec) / res.ResyncReads
	}
	res.RSSMiB, res.HWMMiB, res.RSSAnonMiB = float64(to.RSS)/(1<<20), float64(to.HWM)/(1<<20), float64(to.Anon)/(1<<20)
	return burstErr
}

// ScrapePause is the wait after a scrape of the metrics page that took took: coldPoll, or
// 20 times the scrape when that is longer (the scrapes then cost the proxier at most about
// 5 % of one CPU).
func ScrapePause(took time.Duration) time.Duration {
	return max(coldPoll, 20*took)
}

// syncsPerChange bounds one change's wait in syncs: the sync running when the change lands,
// the proxier's own delay, and the sync that applies it.
const syncsPerChange = 3

// ChangeTimeout is the bound of one change's wait: timeout, or syncsPerChange times the
// mean of the syncs a proxier reported so far (count of them, seconds in all) when that is
// longer. Under TCG one kube-proxy sync can take minutes, and a change it would apply in
// its next sync is a latency, not a timeout.
func ChangeTimeout(timeout time.Duration, count, seconds float64) time.Duration {
	if count <= 0 {
		return timeout
	}
	mean := time.Duration(seconds / count * float64(time.Second))
	return max(timeout, syncsPerChange*mean)
}

// ChangeBound is the wait of one change: the adaptive timeout (ChangeTimeout), cut to what
// is left of the change budget, but never below the configured timeout.
func ChangeBound(adaptive, timeout, budgetLeft time.Duration) time.Duration {
	return min(adaptive, max(timeout, budgetLeft))
}

func joinNote(note, more string) string {
	switch {
	case more == "":
		return note
	case note == "":
		return more
	}
	return note + "; " + more
}

// burst writes cfg.Burst changes with cfg.Writers writers, then polls until every new real
// server is present.
func burst(ctx context.Context, cfg Config, cluster *Cluster, kernel Kernel, p Proxier, rng *rand.Rand, res *Result) error {
	before, err := syncCount(ctx, p.MetricsURL)
	if err != nil {
		return err
	}
	targets := make([]int, cfg.Burst)
	for i := range targets {
		targets[i] = rng.IntN(len(cluster.VIPs))
	}
	var (
		mu      sync.Mutex
		pending []Target
	)
	start := time.Now()
	err = apiretry.Each(ctx, len(targets), cfg.Writers, func(ctx context.Context, i int) error {
		key, rs, err := cluster.AddEndpoint(ctx, targets[i])
		if err == nil {
			mu.Lock()
			pending = append(pending, Target{key, rs})
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("burst: %w", err)
	}
	res.BurstWriteMS = ms(time.Since(start))
	wctx, wcancel := context.WithTimeout(ctx, cfg.BurstTimeout)
	seen, pending, err := kernel.WaitTargets(wctx, pending, burstPoll)
	wcancel()
	if err != nil {
		return fmt.Errorf("burst: %w", err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("burst: %w", ctx.Err())
	}
	res.BurstMS, res.BurstMissing = ms(seen.Sub(start)), len(pending)
	after, err := syncCount(ctx, p.MetricsURL)
	if err != nil {
		return err
	}
	res.BurstSyncs = after - before
	if len(pending) > 0 {
		return fmt.Errorf("burst: %d of %d changes not in the kernel after %s", len(pending), cfg.Burst, cfg.BurstTimeout)
	}
	return nil
}

// dump saves the proxier's goroutines when it missed a deadline (see
// Proxier.dumpGoroutines); a failed dump is only logged.
func dump(ctx context.Context, p Proxier, logDir, what string) {
	logger := klog.FromContext(ctx)
	name, err := p.dumpGoroutines(ctx, logDir, what)
	if err != nil {
		logger.Error(err, "Goroutine dump", "at", what)
	} else if name != "" {
		logger.Info("Goroutine dump", "at", what, "file", name)
	}
}

// watchExit returns a context cancelled when proc exits, so that no wait outlives it.
func watchExit(ctx context.Context, proc *bed.Process) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for ctx.Err() == nil {
			if exited, _ := proc.Exited(); exited {
				cancel()
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return ctx, cancel
}

// exitCause adds the proxier's exit and log tail to err when the proxier has exited.
func exitCause(err error, proc *bed.Process) error {
	if exited, perr := proc.Exited(); exited {
		if perr == nil {
			perr = errors.New("status 0")
		}
		return fmt.Errorf("%w; %s exited (%w), log tail:\n%s", err, proc.Name, perr, proc.Tail(2000))
	}
	return err
}
