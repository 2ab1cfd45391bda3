package e2e

// Helpers of the adversarial scenarios: run the proxier with other arguments for one test,
// read its metrics, read a Service's Events, list the VIPs on kube-ipvs0.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/kubevs/kubevs/test/bed"
)

// proxierMetrics is the proxier's default metrics address.
const proxierMetrics = "http://127.0.0.1:10249/metrics"

// swapProxier replaces the running kubevs-proxier with one started with edit(the bed's
// arguments) and waits until it is ready. When the test ends that one is stopped and one with
// the bed's own arguments started again, so later scenarios see the usual node.
func (f *Framework) swapProxier(name string, edit func(args []string) []string) *bed.Process {
	f.t.Helper()
	f.killProxier()
	p, err := bed.StartProcess(f.ctx, f.Bed.LogDir, fmt.Sprintf("kubevs-proxier-%s-%s", name, f.Namespace), proxier.Binary, edit(proxier.Args(f.Bed))...)
	if err != nil {
		f.t.Fatalf("start kubevs-proxier (%s): %v", name, err)
	}
	f.t.Cleanup(func() {
		if err := p.Stop(10 * time.Second); err != nil {
			f.t.Errorf("stop kubevs-proxier (%s): %v", name, err)
		}
		f.expectNoProxier("the " + name + " kubevs-proxier ends")
		f.startProxier()
	})
	f.Eventually("the "+name+" kubevs-proxier is ready", func(ctx context.Context) error {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("exited: %w; log:\n%s", err, p.Tail(2000))
		}
		return httpOK(ctx, proxierReadyz)
	})
	return p
}

// replaceArg returns args with the argument starting with prefix (say "--config=") replaced
// by prefix+value, or appended when there is none.
func replaceArg(args []string, prefix, value string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if strings.HasPrefix(a, prefix) {
			out[i] = prefix + value
			return out
		}
	}
	return append(out, prefix+value)
}

// metrics returns the samples of the proxier's /metrics, keyed by the sample as written
// before its value: `name{label="value"}`.
func metrics(ctx context.Context) (map[string]float64, error) {
	return scrape(ctx, proxierMetrics, perTry)
}

// scrape returns the samples of the Prometheus text page at url, keyed as metrics does,
// with timeout bounding the request. A non-200 answer is an error.
func scrape(ctx context.Context, url string, timeout time.Duration) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// mustMetrics is metrics, failing the test on error.
func (f *Framework) mustMetrics() map[string]float64 {
	f.t.Helper()
	m, err := metrics(f.ctx)
	if err != nil {
		f.t.Fatalf("read the proxier's metrics: %v", err)
	}
	return m
}

// skipped is the sample name of kubevs_objects_skipped_total for reason.
func skipped(reason string) string {
	return fmt.Sprintf("kubevs_objects_skipped_total{reason=%q}", reason)
}

// serviceEvents lists the core/v1 Events about svc.
func (f *Framework) serviceEvents(ctx context.Context, svc *corev1.Service) ([]corev1.Event, error) {
	sel := fields.Set{"involvedObject.kind": "Service", "involvedObject.name": svc.Name}.AsSelector().String()
	list, err := f.Client.CoreV1().Events(svc.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list events of service %s: %w", svc.Name, err)
	}
	return list.Items, nil
}

// expectEvent waits until a Warning Event of reason whose message names addr is on svc.
func (f *Framework) expectEvent(svc *corev1.Service, reason, addr string) {
	f.t.Helper()
	f.Eventually(fmt.Sprintf("a %s Event naming %s on service %s", reason, addr, svc.Name), func(ctx context.Context) error {
		evs, err := f.serviceEvents(ctx, svc)
		if err != nil {
			return err
		}
		var seen []string
		for _, e := range evs {
			if e.Type == corev1.EventTypeWarning && e.Reason == reason && strings.Contains(e.Message, " "+addr+" ") {
				return nil
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return fmt.Errorf("events: %q", seen)
	})
}

// vips lists the addresses bound to kube-ipvs0.
func vips(ctx context.Context) (map[string]bool, error) {
	out, err := exec.CommandContext(ctx, "ip", "-o", "addr", "show", "dev", "kube-ipvs0").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ip addr show dev kube-ipvs0: %w: %s", err, out)
	}
	got := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		fs := strings.Fields(line)
		for i := 0; i+1 < len(fs); i++ {
			if fs[i] == "inet" || fs[i] == "inet6" {
				addr, _, _ := strings.Cut(fs[i+1], "/")
				got[addr] = true
			}
		}
	}
	return got, nil
}
