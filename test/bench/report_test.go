package bench

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sampleReport() *Report {
	return &Report{
		Date:     "2026-12-06T00:00:00Z",
		Machine:  Machine{HostNProc: 2, HostKernel: "6.18.0", GuestNProc: 2, GuestKernel: "6.1.0-44-amd64", Accel: "QEMU TCG"},
		Services: 1000, Endpoints: 10, Changes: 20, Burst: 1000, IdleSec: 60, SetupMS: 61234,
		Results: []Result{
			{
				Proxier: KubeProxyName, ColdMS: 20800, ColdCPUMS: 16000, SettledMS: 600000, SettledCPUMS: 300000,
				Change:  Latencies{Count: 20, Timeouts: 1, P50MS: 19200, P90MS: 24800, P99MS: 30100, MaxMS: 120000},
				BurstMS: 45000, BurstSyncs: 3, FullSyncs: 4, FullSyncMeanMS: 9100, IdleCPUPct: 16.2, RSSMiB: 58, HWMMiB: 70,
				Note: "change budget 10m0s spent after 19 of 20 changes",
			},
			{
				Proxier: KubevsName, ColdMS: 7200, ColdCPUMS: 6900, SettledMS: 7300, SettledCPUMS: 7000,
				Change:  Latencies{Count: 20, P50MS: 27, P90MS: 36, P99MS: 83, MaxMS: 83},
				BurstMS: 4500, BurstSyncs: 12, FullSyncs: 1, FullSyncMeanMS: 350, ResyncReads: 2, ResyncReadMeanMS: 1200, IdleCPUPct: 0.8, RSSMiB: 37, HWMMiB: 41,
				RSSAnonMiB: 21, HeapInuseMiB: 9, HeapGoalMiB: 16, HeapFreeMiB: 3, RuntimeMiB: 7, MemoryReleases: 2,
			},
		},
		Floor: &Floor{VirtualServers: 1000, RealServers: 10000, Ops: 11000, WallMS: 2200, OpsPerSec: 5000},
		Notes: []string{"kube-proxy ipvs left 2 virtual servers after its cleanup; the benchmark deleted them"},
	}
}

func TestMarkdownGolden(t *testing.T) {
	golden(t, "report.md", sampleReport().Markdown())
}

func TestMarkdownOneProxierHasNoRatioRow(t *testing.T) {
	r := sampleReport()
	r.Results = r.Results[1:]
	r.Floor, r.Notes = nil, nil
	r.Machine.APIServer = apiServerPlace("/run/kubeconfig") // the header says where it ran
	r.SetupMS, r.Preloaded = 0, true                        // and who wrote the objects
	golden(t, "report-kubevs-only.md", r.Markdown())
}

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	r := sampleReport()
	md, err := r.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	gotMD, err := os.ReadFile(filepath.Join(dir, "bench-e2e-N1000.md"))
	if err != nil || string(gotMD) != md {
		t.Errorf("markdown file: %v, or differs from the returned text", err)
	}
	js, err := os.ReadFile(filepath.Join(dir, "bench-e2e-N1000.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, &back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}
