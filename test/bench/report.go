package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Report is one benchmark run: the machine, the sizes, one Result per proxier.
type Report struct {
	Date    string  `json:"date"`
	Machine Machine `json:"machine"`
	// Services (N), Endpoints per Service, Changes (K) and Burst (B).
	Services  int     `json:"services"`
	Endpoints int     `json:"endpoints_per_service"`
	Changes   int     `json:"changes"`
	Burst     int     `json:"burst"`
	IdleSec   float64 `json:"idle_sec"`
	SetupMS   float64 `json:"setup_ms"` // writing the Services and slices
	// Preloaded: the host's half wrote them before the guest started (SetupMS is 0).
	Preloaded bool     `json:"preloaded,omitempty"`
	Results   []Result `json:"results"`
	Floor     *Floor   `json:"floor,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

// Machine says where the figures come from.
type Machine struct {
	HostNProc   int    `json:"host_nproc"`
	HostKernel  string `json:"host_kernel"`
	GuestNProc  int    `json:"guest_nproc"`
	GuestKernel string `json:"guest_kernel"`
	Accel       string `json:"accel"`
	// APIServer says where etcd and kube-apiserver ran; empty in reports from before the
	// host could serve them.
	APIServer string `json:"api_server,omitempty"`
}

// Result is one proxier's figures.
type Result struct {
	Proxier string `json:"proxier"`
	Version string `json:"version,omitempty"`
	// ColdMS is the wall time from start to every virtual server present, ColdCPUMS the
	// process CPU over it; SettledMS and SettledCPUMS go on to every real server present and
	// the proxier's first sync reported done.
	ColdMS       float64 `json:"cold_ms"`
	ColdCPUMS    float64 `json:"cold_cpu_ms"`
	SettledMS    float64 `json:"settled_ms"`
	SettledCPUMS float64 `json:"settled_cpu_ms"`
	// Change is the one-endpoint change latency, API write to kernel.
	Change Latencies `json:"change"`
	// BurstWriteMS is how long the burst's writes took; BurstMS from the first write to
	// every new real server present; BurstSyncs the syncs the proxier reported meanwhile.
	BurstWriteMS float64 `json:"burst_write_ms"`
	BurstMS      float64 `json:"burst_ms"`
	BurstMissing int     `json:"burst_missing"`
	BurstSyncs   float64 `json:"burst_syncs"`
	// FullSyncs are the full syncs from the end of the cold sync to the end of the idle
	// period, FullSyncMeanMS their mean duration (the cost of a periodic resync).
	FullSyncs      float64 `json:"full_syncs"`
	FullSyncMeanMS float64 `json:"full_sync_mean_ms"`
	// ResyncReadMeanMS is the mean of kubevs's periodic resyncs' kernel reads made beside
	// the syncs, without the lock (kubevs_resync_read_duration_seconds); for kubevs,
	// FullSyncMeanMS is then the time a full sync holds the lock, what a change can wait.
	ResyncReads      float64 `json:"resync_reads,omitempty"`
	ResyncReadMeanMS float64 `json:"resync_read_mean_ms,omitempty"`
	// IdleCPUPct is the CPU over the idle period, in percent of one core.
	IdleCPUPct float64 `json:"idle_cpu_pct"`
	RSSMiB     float64 `json:"rss_mib"`
	HWMMiB     float64 `json:"peak_rss_mib"`
	// RSSAnonMiB is the anonymous part of RSSMiB; HeapInuseMiB and HeapGoalMiB are the Go
	// heap in use and the size at which the next collection starts (go_memstats_* of the
	// proxier's metrics; 0 when not served), all at the end of the idle period.
	RSSAnonMiB   float64 `json:"rss_anon_mib,omitempty"`
	HeapInuseMiB float64 `json:"heap_inuse_mib,omitempty"`
	HeapGoalMiB  float64 `json:"heap_goal_mib,omitempty"`
	// HeapFreeMiB is heap memory free and not yet returned to the operating system,
	// RuntimeMiB what the Go runtime maps beside the heap; MemoryReleases counts kubevs's
	// releases of freed memory since it started (kubevs_memory_releases_total).
	HeapFreeMiB    float64 `json:"heap_free_mib,omitempty"`
	RuntimeMiB     float64 `json:"runtime_mib,omitempty"`
	MemoryReleases int     `json:"memory_releases,omitempty"`
	// Error is set when a phase failed; the figures before it stand. Note says what was cut
	// short (a change budget spent).
	Error string `json:"error,omitempty"`
	Note  string `json:"note,omitempty"`
}

// WriteFiles writes the report as bench-e2e-N<services>.json and .md into dir and returns
// the markdown.
func (r *Report) WriteFiles(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create results dir: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode report: %w", err)
	}
	base := filepath.Join(dir, fmt.Sprintf("bench-e2e-N%d", r.Services))
	md := r.Markdown()
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	return md, nil
}

// Markdown renders the report: a heading line with date and machine, the table, a ratio row
// when kube-proxy and kubevs both ran, the floor and the notes.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	setup := "setup (API writes) " + secs(r.SetupMS)
	if r.Preloaded {
		setup = "objects written by the host before the guest started"
	}
	fmt.Fprintf(&b, "bench-e2e %s: %d Services x %d endpoints, %d single changes, burst of %d, idle %gs; "+
		"guest %s (%d vCPU, %s) on host %s (%d CPUs); %s\n\n",
		r.Date, r.Services, r.Endpoints, r.Changes, r.Burst, r.IdleSec,
		m.GuestKernel, m.GuestNProc, m.Accel, m.HostKernel, m.HostNProc, setup)
	if m.APIServer != "" {
		fmt.Fprintf(&b, "API server: %s\n\n", m.APIServer)
	}
	fmt.Fprintf(&b, "| proxier | cold: all virtual servers (CPU) | all real servers, first sync done (CPU) | one change p50 / p90 / p99 / max | burst of %d: converge (syncs) | full syncs: mean (count); kubevs: under the lock, + its read beside | idle CPU | RSS (peak) |\n", r.Burst)
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, x := range r.Results {
		full := fmt.Sprintf("%s (%.0f)", msOrS(x.FullSyncMeanMS), x.FullSyncs)
		if x.ResyncReads > 0 {
			full += fmt.Sprintf(" + read %s (%.0f)", msOrS(x.ResyncReadMeanMS), x.ResyncReads)
		}
		fmt.Fprintf(&b, "| %s | %s (%s) | %s (%s) | %s | %s | %s | %.1f %% | %.0f MiB (%.0f) |\n",
			x.Proxier, secs(x.ColdMS), secs(x.ColdCPUMS), secs(x.SettledMS), secs(x.SettledCPUMS), latencies(x.Change), burstCell(x), full,
			x.IdleCPUPct, x.RSSMiB, x.HWMMiB)
	}
	if kp, kv, ok := r.pair(); ok {
		fmt.Fprintf(&b, "| kube-proxy / kubevs | %s (%s) | %s (%s) | %s / %s / %s / %s | %s | %s | %s | %s |\n",
			ratio(kp.ColdMS, kv.ColdMS), ratio(kp.ColdCPUMS, kv.ColdCPUMS), ratio(kp.SettledMS, kv.SettledMS), ratio(kp.SettledCPUMS, kv.SettledCPUMS),
			ratio(kp.Change.P50MS, kv.Change.P50MS), ratio(kp.Change.P90MS, kv.Change.P90MS),
			ratio(kp.Change.P99MS, kv.Change.P99MS), ratio(kp.Change.MaxMS, kv.Change.MaxMS),
			ratio(kp.BurstMS, kv.BurstMS), ratio(kp.FullSyncMeanMS, kv.FullSyncMeanMS), ratio(kp.IdleCPUPct, kv.IdleCPUPct), ratio(kp.RSSMiB, kv.RSSMiB))
	}
	b.WriteString(memoryLines(r.Results))
	if f := r.Floor; f != nil {
		fmt.Fprintf(&b, "\nnetlink floor (kubevs's IPVS adapter, one message per add): %d virtual servers + %d real servers = %d ops in %s: %.0f ops/s\n",
			f.VirtualServers, f.RealServers, f.Ops, secs(f.WallMS), f.OpsPerSec)
		if f.IPSetExecMS > 0 {
			fmt.Fprintf(&b, "\none `ipset list -n` process (mean of %d): %s; kube-proxy's IPVS mode runs one per set entry it adds and one per set it lists in each sync\n",
				execRuns, msOrS(f.IPSetExecMS))
		}
		for _, x := range r.Results {
			if x.SettledMS > 0 {
				fmt.Fprintf(&b, "\n%s cold sync (all real servers) / netlink floor: %s\n", x.Proxier, ratio(x.SettledMS, f.WallMS))
			}
		}
	}
	for _, x := range r.Results {
		if x.Note != "" {
			fmt.Fprintf(&b, "\n%s: %s\n", x.Proxier, x.Note)
		}
		if x.Error != "" {
			fmt.Fprintf(&b, "\n%s failed: %s\n", x.Proxier, x.Error)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", n)
	}
	return b.String()
}

func (r *Report) pair() (kp, kv Result, ok bool) {
	var haveKP, haveKV bool
	for _, x := range r.Results {
		switch x.Proxier {
		case KubeProxyName:
			kp, haveKP = x, true
		case KubevsName:
			kv, haveKV = x, true
		}
	}
	return kp, kv, haveKP && haveKV
}

func latencies(l Latencies) string {
	if l.Count == 0 {
		return "-"
	}
	s := fmt.Sprintf("%s / %s / %s / %s", msOrS(l.P50MS), msOrS(l.P90MS), msOrS(l.P99MS), msOrS(l.MaxMS))
	if l.Timeouts > 0 {
		s += fmt.Sprintf(" (%d of %d timed out: max >=)", l.Timeouts, l.Count)
	}
	return s
}

func burstCell(x Result) string {
	if x.BurstMS == 0 {
		return "-"
	}
	s := fmt.Sprintf("%s (%.0f)", secs(x.BurstMS), x.BurstSyncs)
	if x.BurstMissing > 0 {
		s += fmt.Sprintf(", %d missing", x.BurstMissing)
	}
	return s
}

// secs prints milliseconds as seconds with one decimal.
func secs(msv float64) string { return fmt.Sprintf("%.1f s", msv/1000) }

// msOrS prints milliseconds below 10 s as ms, above as seconds.
func msOrS(msv float64) string {
	if msv < 10000 {
		return fmt.Sprintf("%.0f ms", msv)
	}
	return secs(msv)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fx", a/b)
}

// memoryLines says, for the results that have it, what the RSS at the end of the idle
// period is made of: anonymous memory (the Go heap up to the collector's goal, stacks, the
// runtime's own) and file-backed pages (mostly the binary), and the Go heap in use.
func memoryLines(results []Result) string {
	var b strings.Builder
	for _, x := range results {
		if x.RSSAnonMiB == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("\nmemory at the end of the idle period:\n")
		}
		fmt.Fprintf(&b, "- %s: RSS %.0f MiB = %.0f MiB anonymous + %.0f MiB file-backed", x.Proxier, x.RSSMiB, x.RSSAnonMiB, x.RSSMiB-x.RSSAnonMiB)
		if x.HeapInuseMiB > 0 {
			fmt.Fprintf(&b, "; Go heap in use %.0f MiB, next collection at %.0f MiB", x.HeapInuseMiB, x.HeapGoalMiB)
		}
		if x.HeapFreeMiB > 0 || x.RuntimeMiB > 0 {
			fmt.Fprintf(&b, "; heap free not yet returned %.0f MiB, the runtime's own %.0f MiB", x.HeapFreeMiB, x.RuntimeMiB)
		}
		if x.MemoryReleases > 0 {
			fmt.Fprintf(&b, "; %d releases of freed memory since start", x.MemoryReleases)
		}
		b.WriteString("\n")
	}
	return b.String()
}
