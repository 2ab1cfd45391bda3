package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
)

// BenchmarkAddDelLatency measures the kubevs binary's ADD and DEL with a node API server
// running, over 200 pods wired by the reference bridge plugin, and reports p50/p99: as the
// runtime sees them (exec included) and inside the plugin (from its own log), with the
// server's store on disk and on tmpfs (where the proxier keeps it, nodeapi.DefaultStoreDir).
// The bridge+host-local ADD and DEL of the same pods are reported beside them for scale, and
// kubevs's VERSION (exec and Go runtime start, no work) as the floor of any exec. Run
// with -benchtime=1x: one iteration is the whole 200-pod run.
//
//	go test -run '^$' -bench AddDelLatency -benchtime=1x ./plugin/
func BenchmarkAddDelLatency(b *testing.B) {
	b.Run("store=disk", func(b *testing.B) { benchAddDel(b, "") })
	b.Run("store=tmpfs", func(b *testing.B) {
		dir, err := os.MkdirTemp("/dev/shm", "kubevs-bench-")
		if err != nil {
			b.Skipf("no tmpfs at /dev/shm: %v", err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
		benchAddDel(b, dir)
	})
}

// benchAddDel runs the 200-pod measurement with the proxier's store in storeDir (the test's
// temporary directory, on disk, when empty).
func benchAddDel(b *testing.B, storeDir string) {
	const pods = 200
	h := newHarness(b)
	if storeDir != "" {
		h.useStore(storeDir)
	}
	h.serve()
	h.ready.Store(true)
	bridgeOnly := h.list("1.0.0", "")
	bridgeOnly.Plugins = bridgeOnly.Plugins[:1]
	kubevsConf := h.list("1.0.0", "").Plugins[1].Bytes
	kubevs := filepath.Join(h.bin, "kubevs")
	ctx := context.Background()
	for b.Loop() {
		var bridgeAdd, kubevsAdd, kubevsDel, bridgeDel, version []time.Duration
		type wired struct {
			p    *pod
			conf []byte
		}
		var all []wired
		for i := range pods {
			p := h.newPod(fmt.Sprintf("bench%03d", i))
			start := time.Now()
			res, err := h.add(bridgeOnly, p)
			if err != nil {
				b.Fatal(err)
			}
			bridgeAdd = append(bridgeAdd, time.Since(start))
			conf := withPrevResult(b, kubevsConf, res)
			args := kubevsArgs("ADD", p, h.bin)
			start = time.Now()
			if err := h.inHost(func() error {
				_, err := invoke.ExecPluginWithResult(ctx, kubevs, conf, args, nil)
				return err
			}); err != nil {
				b.Fatalf("kubevs ADD: %v", err)
			}
			kubevsAdd = append(kubevsAdd, time.Since(start))
			all = append(all, wired{p, conf})
		}
		if n := len(h.store.List()); n != pods {
			b.Fatalf("%d registrations, want %d", n, pods)
		}
		for _, w := range all {
			start := time.Now()
			if err := h.inHost(func() error {
				return invoke.ExecPluginWithoutResult(ctx, kubevs, w.conf, kubevsArgs("DEL", w.p, h.bin), nil)
			}); err != nil {
				b.Fatalf("kubevs DEL: %v", err)
			}
			kubevsDel = append(kubevsDel, time.Since(start))
			start = time.Now()
			if err := h.del(bridgeOnly, w.p.rt()); err != nil {
				b.Fatal(err)
			}
			bridgeDel = append(bridgeDel, time.Since(start))
		}
		if n := len(h.store.List()); n != 0 {
			b.Fatalf("%d registrations left", n)
		}
		// The floor of any exec'd Go plugin here: kubevs answering VERSION, which does no work.
		for range pods {
			start := time.Now()
			if err := h.inHost(func() error {
				_, err := invoke.GetVersionInfo(ctx, kubevs, nil)
				return err
			}); err != nil {
				b.Fatalf("kubevs VERSION: %v", err)
			}
			version = append(version, time.Since(start))
		}
		inAdd, inDel := inProcessDurations(b, h.kubevsLog())
		for _, m := range []struct {
			name string
			d    []time.Duration
		}{
			{"kubevs-add", kubevsAdd}, {"kubevs-del", kubevsDel},
			{"kubevs-add-inproc", inAdd}, {"kubevs-del-inproc", inDel},
			{"bridge-add", bridgeAdd}, {"bridge-del", bridgeDel}, {"kubevs-version", version},
		} {
			p50, p99 := percentile(m.d, 50), percentile(m.d, 99)
			b.ReportMetric(ms(p50), m.name+"-p50-ms")
			b.ReportMetric(ms(p99), m.name+"-p99-ms")
			b.Logf("%s %-17s over %d pods: p50 %v p99 %v max %v", b.Name(), m.name, len(m.d), p50, p99, slices.Max(m.d))
		}
	}
}

var verbDone = regexp.MustCompile(`"CNI verb done".* verb="(ADD|DEL)".* duration="([^"]+)"`)

// inProcessDurations reads the plugin's own "CNI verb done" log lines: the time spent inside
// the plugin, without process start-up.
func inProcessDurations(tb testing.TB, log string) (add, del []time.Duration) {
	for _, line := range strings.Split(log, "\n") {
		m := verbDone.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d, err := time.ParseDuration(m[2])
		if err != nil {
			tb.Fatalf("duration in %q: %v", line, err)
		}
		if m[1] == "ADD" {
			add = append(add, d)
		} else {
			del = append(del, d)
		}
	}
	if len(add) == 0 || len(del) == 0 {
		tb.Fatalf("no in-process durations in the plugin log")
	}
	return add, del
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the nearest-rank p-th percentile of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

func TestPercentile(t *testing.T) {
	ds := make([]time.Duration, 200)
	for i := range ds {
		ds[i] = time.Duration(200-i) * time.Millisecond
	}
	if got := percentile(ds, 50); got != 100*time.Millisecond {
		t.Errorf("p50 = %v, want 100ms", got)
	}
	if got := percentile(ds, 99); got != 198*time.Millisecond {
		t.Errorf("p99 = %v, want 198ms", got)
	}
	if got := percentile(ds[:1], 99); got != 200*time.Millisecond {
		t.Errorf("p99 of one = %v", got)
	}
}

func kubevsArgs(cmd string, p *pod, bin string) *invoke.Args {
	return &invoke.Args{Command: cmd, ContainerID: p.id, NetNS: p.path, IfName: "eth0", Path: bin,
		PluginArgsStr: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-" + p.id}
}

// withPrevResult returns the kubevs plugin config with the list's name and the bridge result
// injected, as libcni would pass it.
func withPrevResult(tb testing.TB, conf []byte, res interface{ Version() string }) []byte {
	tb.Helper()
	pc, err := libcni.NetworkPluginConfFromBytes(withName(tb, conf))
	if err != nil {
		tb.Fatal(err)
	}
	pc, err = libcni.InjectConf(pc, map[string]any{"prevResult": res})
	if err != nil {
		tb.Fatal(err)
	}
	var check map[string]any
	if err := json.Unmarshal(pc.Bytes, &check); err != nil || check["prevResult"] == nil {
		tb.Fatalf("prevResult not injected: %v", err)
	}
	return pc.Bytes
}
