package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MetricSum sums the samples of metric name in a Prometheus text exposition whose labels
// include every pair of match (a nil match takes every sample of the name). found is false
// if no sample matched.
func MetricSum(text, name string, match map[string]string) (sum float64, found bool, err error) {
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		labels := ""
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return 0, false, fmt.Errorf("metric %s: unterminated labels in %q", name, line)
			}
			labels, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another metric whose name starts with name
		}
		if !labelsMatch(labels, match) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false, fmt.Errorf("metric %s: no value in %q", name, line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric %s: value in %q: %w", name, line, err)
		}
		sum, found = sum+v, true
	}
	return sum, found, nil
}

// labelsMatch reports whether the label text (`a="x",b="y"`) holds every pair of match.
// Label values here never contain commas or quotes.
func labelsMatch(labels string, match map[string]string) bool {
	for k, v := range match {
		if !strings.Contains(","+labels+",", ","+k+"="+strconv.Quote(v)+",") {
			return false
		}
	}
	return true
}

// scrape fetches a metrics page.
func scrape(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	body, err := get(ctx, url)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", url, err)
	}
	return string(body), nil
}

// get returns the body of url, an error for any status but 200 OK.
func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// kubeProxySync is the sync histogram of kube-proxy, which kubevs-proxier exports too; both
// label it by IP family, and kube-proxy runs a (here idle) IPv6 proxier beside the IPv4 one,
// so only the IPv4 samples count.
const kubeProxySync = "kubeproxy_sync_proxy_rules_duration_seconds"

var ipv4 = map[string]string{"ip_family": "IPv4"}

// syncCount is the number of syncs a proxier reports; 0 before its first (a labelled
// histogram has no sample until then).
func syncCount(ctx context.Context, url string) (float64, error) {
	text, err := scrape(ctx, url)
	if err != nil {
		return 0, err
	}
	v, _, err := MetricSum(text, kubeProxySync+"_count", ipv4)
	return v, err
}

// KubeProxySyncs reads a metrics page's IPv4 sync histogram (kube-proxy's, which
// kubevs-proxier exports too): how many syncs and their total seconds. found is false until
// the first sync; a count without its sum is an error.
func KubeProxySyncs(text string) (count, seconds float64, found bool, err error) {
	if count, found, err = MetricSum(text, kubeProxySync+"_count", ipv4); err != nil || !found {
		return 0, 0, found, err
	}
	seconds, hasSum, err := MetricSum(text, kubeProxySync+"_sum", ipv4)
	if err == nil && !hasSum {
		err = fmt.Errorf("metric %s_count without its _sum", kubeProxySync)
	}
	return count, seconds, true, err
}

// fullSyncs reads how many full syncs a proxier did and their total seconds: kubevs's
// kubevs_sync_duration_seconds{mode="full"} when it exports it, else kube-proxy's IPv4 sync
// histogram (every kube-proxy IPVS sync is a full one). None yet is 0, 0.
func fullSyncs(ctx context.Context, url string) (count, seconds float64, err error) {
	text, err := scrape(ctx, url)
	if err != nil {
		return 0, 0, err
	}
	name, match := "kubevs_sync_duration_seconds", map[string]string{"mode": "full"}
	if _, found, _ := MetricSum(text, name+"_count", match); !found {
		name, match = kubeProxySync, ipv4
	}
	if count, _, err = MetricSum(text, name+"_count", match); err != nil {
		return 0, 0, err
	}
	seconds, _, err = MetricSum(text, name+"_sum", match)
	return count, seconds, err
}

// resyncReads reads kubevs's kubevs_resync_read_duration_seconds: how many periodic
// resyncs read the kernel beside the syncs (without the lock) and their total seconds. A
// proxier without it (kube-proxy) is 0, 0.
func resyncReads(ctx context.Context, url string) (count, seconds float64, err error) {
	text, err := scrape(ctx, url)
	if err != nil {
		return 0, 0, err
	}
	const name = "kubevs_resync_read_duration_seconds"
	if count, _, err = MetricSum(text, name+"_count", nil); err != nil {
		return 0, 0, err
	}
	seconds, _, err = MetricSum(text, name+"_sum", nil)
	return count, seconds, err
}

// ReadKinds are the kinds of kubevs_resync_reads_total (proxier/reconcile/probe.go).
var ReadKinds = []string{"full", "probe", "escalated"}

// readKinds scrapes url for kubevs's resync reads by kind (zero for a proxier without them).
func readKinds(ctx context.Context, url string) (map[string]float64, error) {
	text, err := scrape(ctx, url)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, k := range ReadKinds {
		if out[k], _, err = MetricSum(text, "kubevs_resync_reads_total", map[string]string{"kind": k}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readKindsNote says how many reads of each kind ran between from and to, "" when none did.
func readKindsNote(what string, from, to map[string]float64) string {
	var parts []string
	for _, k := range ReadKinds {
		if n := to[k] - from[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return what + " resync reads: " + strings.Join(parts, ", ")
}

// goMemory is what a proxier's go_memstats_* metrics (client_golang's Go collector, which
// kubevs and kube-proxy both serve) say of its memory, in bytes; zero when not served.
type goMemory struct {
	// inuse is the heap in use, goal the heap size at which the next collection starts.
	inuse, goal float64
	// free is heap memory free and not yet returned to the operating system (idle minus
	// released); runtime is what the runtime maps beside the heap (stacks, GC metadata,
	// spans, buffers: sys minus heap sys).
	free, runtime float64
	// releases counts kubevs_memory_releases_total (kubevs only).
	releases float64
}

// goHeap reads goMemory from the proxier's metrics at url.
func goHeap(ctx context.Context, url string) (goMemory, error) {
	text, err := scrape(ctx, url)
	if err != nil {
		return goMemory{}, err
	}
	var m goMemory
	var idle, released, sys, heapSys float64
	for _, f := range []struct {
		name string
		v    *float64
	}{
		{"go_memstats_heap_inuse_bytes", &m.inuse}, {"go_memstats_next_gc_bytes", &m.goal},
		{"go_memstats_heap_idle_bytes", &idle}, {"go_memstats_heap_released_bytes", &released},
		{"go_memstats_sys_bytes", &sys}, {"go_memstats_heap_sys_bytes", &heapSys},
		{"kubevs_memory_releases_total", &m.releases},
	} {
		if *f.v, _, err = MetricSum(text, f.name, nil); err != nil {
			return goMemory{}, err
		}
	}
	m.free, m.runtime = max(idle-released, 0), max(sys-heapSys, 0)
	return m, nil
}
