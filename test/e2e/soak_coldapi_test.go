package e2e

// The cold sync's objects through the API server: s.cold Services and their EndpointSlices,
// created by a bounded pool of writers and deleted in batches by label, each phase measured
// (objects/s over all, in its first and last tenth, a request's latency, and where the
// guest's CPUs went: kube-apiserver and etcd run in the emulated guest beside the soak, and
// their CPU is what bounds the rate).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"

	"github.com/kubevs/kubevs/test/apiretry"
	"github.com/kubevs/kubevs/test/guestcpu"
	"github.com/kubevs/kubevs/test/podsim"
)

// coldWorkersDefault writers create and delete the cold objects in parallel
// (KUBEVS_E2E_SOAK_COLD_WORKERS replaces it): more only queue in the emulated guest's API
// server, until its requests time out (seen with 32 at host load 14).
const coldWorkersDefault = 8

// coldRetry retries a request that the API server timed out, refused for load or reset
// (apiretry.Loaded): 5 tries, 1, 2, 4, 8 s apart.
var coldRetry = apiretry.Backoff{First: time.Second, Tries: 5}

// coldLabel marks the cold Services and their EndpointSlices; coldBatchLabel numbers them in
// batches of coldBatch, each deleted by one collection delete, coldWorkers batches at a time.
// (5,000 slices in one request failed: the API server reset it, HTTP/2 INTERNAL_ERROR, after
// its one-minute timeout. At host load 6-9 the guest's API server deleted 3.6 slices/s and 1.3
// Services/s asked in batches of 250, one at a time, retried after timeouts: small batches
// end well within the timeout, several at once use the API server's parallelism.)
const (
	coldLabel      = "soak.e2e.kubevs.io/cold"
	coldBatchLabel = "soak.e2e.kubevs.io/cold-batch"
	coldBatch      = 10
)

// coldCPU are the guest's processes whose CPU the cold phases report.
var coldCPU = []string{"kube-apiserver", "etcd", "kube-controller", guestcpu.Self}

func (s *soak) coldWorkers() int {
	return envInt(s.t, "KUBEVS_E2E_SOAK_COLD_WORKERS", coldWorkersDefault)
}

func coldLabels(i int) map[string]string {
	return map[string]string{coldLabel: "true", coldBatchLabel: strconv.Itoa(i / coldBatch)}
}

// createCold creates the s.cold Services and their slices, s.coldWorkers() at a time, and
// returns their ClusterIPs and what the creation measured.
func (s *soak) createCold(ctx context.Context, client kubernetes.Interface) (map[string]bool, string, error) {
	ips := map[string]bool{}
	var mu sync.Mutex
	m := startMeter()
	err := apiretry.Each(ctx, s.cold, s.coldWorkers(), func(ctx context.Context, i int) error {
		ip, err := s.createColdService(ctx, client, i, m)
		mu.Lock()
		defer mu.Unlock()
		if ip != "" {
			ips[ip] = true
		}
		return err
	})
	summary := m.summary()
	s.t.Logf("cold sync: created %s", summary)
	return ips, summary, err
}

func (s *soak) createColdService(ctx context.Context, client kubernetes.Interface, i int, m *apiMeter) (string, error) {
	ns, name := s.f.Namespace, fmt.Sprintf("cold-%d", i)
	var svc *corev1.Service
	start, tries := time.Now(), 0
	err := coldRetry.Do(ctx, func() error {
		m.try(&tries)
		var err error
		svc, err = client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: coldLabels(i)},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(podsim.DefaultHTTPPort)},
			}},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) { // an earlier try that timed out went through
			svc, err = client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create cold service %s: %w", name, err)
	}
	m.wrote(1, start)
	labels := coldLabels(i)
	labels[discoveryv1.LabelServiceName] = name
	labels[discoveryv1.LabelManagedBy] = "soak.e2e.kubevs.io"
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-soak", Labels: labels},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(podsim.DefaultHTTPPort)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, p := range s.churn.backends {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.IP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(s.f.Bed.NodeName()),
		})
	}
	start, tries = time.Now(), 0
	err = coldRetry.Do(ctx, func() error {
		m.try(&tries)
		err := putSlice(ctx, client, slice, false)
		if apierrors.IsAlreadyExists(err) { // an earlier try that timed out went through
			return putSlice(ctx, client, slice, true)
		}
		return err
	})
	if err == nil {
		m.wrote(1, start)
	}
	return svc.Spec.ClusterIP, err
}

// deleteColdObjects deletes the cold EndpointSlices and then the cold Services, one collection
// delete per batch, and one by one what a failed batch left; it returns what it measured and
// an error naming what is left.
func (s *soak) deleteColdObjects(ctx context.Context, client kubernetes.Interface) (string, error) {
	ns := s.f.Namespace
	var parts []string
	for _, kind := range []struct{ resource, what string }{{"endpointslices", "EndpointSlices"}, {"services", "Services"}} {
		api := client.DiscoveryV1().RESTClient()
		if kind.resource == "services" {
			api = client.CoreV1().RESTClient()
		}
		m := startMeter()
		var mu sync.Mutex
		var batchErrs []error
		_ = apiretry.Each(ctx, (s.cold+coldBatch-1)/coldBatch, s.coldWorkers(), func(ctx context.Context, b int) error {
			sel := coldLabel + "," + coldBatchLabel + "=" + strconv.Itoa(b)
			start, tries := time.Now(), 0
			err := coldRetry.Do(ctx, func() error {
				m.try(&tries)
				return api.Delete().Namespace(ns).Resource(kind.resource).
					VersionedParams(&metav1.ListOptions{LabelSelector: sel}, scheme.ParameterCodec).
					Body(&metav1.DeleteOptions{}).Do(ctx).Error()
			})
			if err != nil { // what the batch left goes one by one below
				mu.Lock()
				batchErrs = append(batchErrs, fmt.Errorf("batch %d: %w", b, err))
				mu.Unlock()
				return nil
			}
			m.wrote(min(coldBatch, s.cold-b*coldBatch), start)
			return nil
		})
		left, err := s.coldLeft(ctx, client, kind.resource)
		if err != nil {
			return strings.Join(parts, "; "), err
		}
		oneByOne := len(left)
		err = apiretry.Each(ctx, len(left), s.coldWorkers(), func(ctx context.Context, i int) error {
			start, tries := time.Now(), 0
			err := coldRetry.Do(ctx, func() error {
				m.try(&tries)
				return api.Delete().Namespace(ns).Resource(kind.resource).Name(left[i]).Body(&metav1.DeleteOptions{}).Do(ctx).Error()
			})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete cold %s %s: %w", kind.resource, left[i], err)
			}
			m.wrote(1, start)
			return nil
		})
		part := fmt.Sprintf("%s deleted: %s, %d of them one by one", kind.what, m.summary(), oneByOne)
		if len(batchErrs) > 0 {
			part += fmt.Sprintf(" (%d collection deletes failed, first: %v)", len(batchErrs), batchErrs[0])
		}
		parts = append(parts, part)
		s.t.Logf("cold sync: %s", part)
		if err != nil {
			return strings.Join(parts, "; "), err
		}
		if left, err = s.coldLeft(ctx, client, kind.resource); err != nil || len(left) > 0 {
			return strings.Join(parts, "; "), errors.Join(err, fmt.Errorf("%d cold %s left after their deletion, e.g. %s",
				len(left), kind.what, strings.Join(left[:min(5, len(left))], ", ")))
		}
	}
	return strings.Join(parts, "; "), nil
}

// coldLeft lists the names of the cold objects of resource ("services", "endpointslices"),
// a page at a time.
func (s *soak) coldLeft(ctx context.Context, client kubernetes.Interface, resource string) ([]string, error) {
	var names []string
	opts := metav1.ListOptions{LabelSelector: coldLabel, Limit: 500}
	for {
		var meta []metav1.ObjectMeta
		var next string
		err := coldRetry.Do(ctx, func() error {
			meta = meta[:0]
			switch resource {
			case "services":
				l, err := client.CoreV1().Services(s.f.Namespace).List(ctx, opts)
				if err != nil {
					return err
				}
				for _, o := range l.Items {
					meta = append(meta, o.ObjectMeta)
				}
				next = l.Continue
			default:
				l, err := client.DiscoveryV1().EndpointSlices(s.f.Namespace).List(ctx, opts)
				if err != nil {
					return err
				}
				for _, o := range l.Items {
					meta = append(meta, o.ObjectMeta)
				}
				next = l.Continue
			}
			return nil
		})
		if err != nil {
			return names, fmt.Errorf("list the cold %s: %w", resource, err)
		}
		for _, o := range meta {
			names = append(names, o.Name)
		}
		if next == "" {
			return names, nil
		}
		opts.Continue = next
	}
}

// apiMeter measures one phase of API writes: when each object was done, each request's
// latency, and the guest's CPU over the phase.
type apiMeter struct {
	mu      sync.Mutex
	start   time.Time
	cpu     guestcpu.Sample
	cpuErr  error
	done    []time.Time
	latency []time.Duration
	retried int
}

// try counts a request's tries: call it at the start of each.
func (m *apiMeter) try(tries *int) {
	*tries++
	if *tries == 2 {
		m.mu.Lock()
		m.retried++
		m.mu.Unlock()
	}
}

func startMeter() *apiMeter {
	m := &apiMeter{start: time.Now()}
	m.cpu, m.cpuErr = guestcpu.Take(coldCPU...)
	return m
}

// wrote records a request that began at start and wrote n objects.
func (m *apiMeter) wrote(n int, start time.Time) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		m.done = append(m.done, now)
	}
	m.latency = append(m.latency, now.Sub(start))
}

// summary: "10000 objects in 9m20s (17.9/s; first tenth 25.0/s, last tenth 15.1/s); a
// request took 410ms median, 1.2s p90; CPU: 2 CPUs 97% busy over ...".
func (m *apiMeter) summary() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	took := time.Since(m.start)
	var b strings.Builder
	fmt.Fprintf(&b, "%d objects in %s (%.1f/s", len(m.done), took.Round(100*time.Millisecond), float64(len(m.done))/took.Seconds())
	if n := len(m.done) / 10; n > 0 && len(m.latency) == len(m.done) { // one object a request
		done := slices.Clone(m.done)
		slices.SortFunc(done, func(a, c time.Time) int { return a.Compare(c) })
		first := done[n-1].Sub(m.start)
		last := done[len(done)-1].Sub(done[len(done)-1-n])
		fmt.Fprintf(&b, "; first tenth %.1f/s, last tenth %.1f/s", float64(n)/first.Seconds(), float64(n)/last.Seconds())
	}
	b.WriteString(")")
	if len(m.latency) > 0 {
		l := slices.Clone(m.latency)
		slices.Sort(l)
		fmt.Fprintf(&b, "; %d requests (%d retried), one took %s median, %s p90", len(l), m.retried, l[len(l)/2].Round(time.Millisecond), l[len(l)*9/10].Round(time.Millisecond))
	}
	if m.cpuErr == nil {
		if now, err := guestcpu.Take(coldCPU...); err == nil {
			fmt.Fprintf(&b, "; CPU: %s", now.Since(m.cpu))
		}
	}
	return b.String()
}
