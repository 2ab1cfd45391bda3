package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/test/bed"
	"github.com/kubevs/kubevs/test/podsim"
)

// The suite's bed, started once by Main.
var (
	theBed *bed.Bed
	theSim *podsim.Sim
)

// Main is the suite's TestMain: it starts the bed, runs the tests and stops the bed. Logs are
// kept (and their dir printed) when a test fails or the bed cannot start.
func Main(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: needs root (network namespaces, bridges, CNI)")
		if testenv.Strict() {
			return 1
		}
		fmt.Println("SKIP: e2e needs root")
		return 0
	}
	if err := enterNodeNetns(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	ctx := context.Background()
	bins, err := resolveBinaries(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer bins.cleanup()

	logDir, keepLogs := os.Getenv("KUBEVS_E2E_LOGDIR"), true
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "kubevs-e2e-logs-"); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: create log dir: %v\n", err)
			return 1
		}
		keepLogs = false
	}
	cfg := bed.Config{
		StartTimeout:    startTimeout(),
		ControlPlaneBin: bins.controlPlane,
		LogDir:          logDir,
		Network:         bed.NetworkConfig{CNIBinDirs: []string{bins.tools}},
	}
	if err := configureKubevs(&cfg, bins); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	start := time.Now()
	b, err := bed.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: start bed: %v\n(logs kept in %s)\n", err, logDir)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: bed up in %s (%s; node %s, logs %s)\n", time.Since(start).Round(time.Millisecond), b.Timings(), b.NodeName(), logDir)
	theBed = b
	if err := writeLaunchConfig(b); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		_ = b.Close()
		return 1
	}
	theSim = podsim.New(b, bins.tools+"/testserver")

	code := m.Run()

	closeErr := errors.Join(theSim.Close(ctx), stopProxiers(), stopLaunched(ctx), b.Close())
	if closeErr != nil {
		fmt.Fprintf(os.Stderr, "e2e: stop bed: %v\n", closeErr)
		if code == 0 {
			code = 1
		}
	}
	if code != 0 || keepLogs {
		fmt.Fprintf(os.Stderr, "e2e: logs in %s\n", logDir)
	} else {
		_ = os.RemoveAll(logDir)
	}
	return code
}

// Framework is one test's handle on the bed: its own namespace, and everything it creates,
// removed when the test ends.
type Framework struct {
	t testing.TB
	// Namespace is the test's own namespace.
	Namespace string
	// Bed and Sim are the suite's bed and pod simulator.
	Bed *bed.Bed
	Sim *podsim.Sim
	// Client talks to the API server as admin.
	Client kubernetes.Interface
	// Timeout bounds each expectation.
	Timeout time.Duration
	ctx     context.Context
}

// New makes a namespace for t and returns the framework. Pods it creates are deleted (the
// kubelet's way) when t ends.
func New(t testing.TB) *Framework {
	t.Helper()
	if theBed == nil {
		t.Fatal("e2e: the bed is not running (TestMain must call e2e.Main)")
	}
	ctx := klog.NewContext(context.Background(), klog.Background().WithName(t.Name()))
	f := &Framework{t: t, Bed: theBed, Sim: theSim, Client: theBed.Client, Timeout: timeout(), ctx: ctx}
	f.Namespace = namespaceFor(t.Name())
	_, err := f.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.Namespace}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", f.Namespace, err)
	}
	// No namespace controller runs, so the namespace itself stays; its pods go.
	return f
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

func namespaceFor(test string) string {
	s := strings.Trim(nonName.ReplaceAllString(strings.ToLower(test), "-"), "-")
	if len(s) > 40 {
		s = strings.Trim(s[:40], "-")
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	return s + "-" + hex.EncodeToString(id)
}

// Context is the test's context, with a logger named after the test.
func (f *Framework) Context() context.Context { return f.ctx }

// CreatePod runs one pod in the test's namespace, labelled app=app. Mutators may change the
// spec (ports, readiness) before it starts.
func (f *Framework) CreatePod(name, app string, mutate ...func(*podsim.PodSpec)) *podsim.Pod {
	f.t.Helper()
	spec := podsim.PodSpec{Namespace: f.Namespace, Name: name, Labels: map[string]string{"app": app}}
	for _, m := range mutate {
		m(&spec)
	}
	p, err := f.Sim.Create(f.ctx, spec)
	if err != nil {
		f.t.Fatalf("create pod %s: %v", name, err)
	}
	f.t.Cleanup(func() {
		if err := p.Delete(f.ctx); err != nil {
			f.t.Errorf("delete pod %s: %v", p.Key(), err)
		}
	})
	return p
}

// CreatePods runs n pods named app-0..app-(n-1), labelled app=app.
func (f *Framework) CreatePods(app string, n int, mutate ...func(*podsim.PodSpec)) []*podsim.Pod {
	f.t.Helper()
	pods := make([]*podsim.Pod, n)
	for i := range pods {
		pods[i] = f.CreatePod(fmt.Sprintf("%s-%d", app, i), app, mutate...)
	}
	return pods
}

// ServicePorts are the ports CreateService gives a Service: HTTP 80 to the pods' "http" port,
// TCP and UDP echo 9000 to "tcp-echo" and "udp-echo".
func ServicePorts() []corev1.ServicePort {
	return []corev1.ServicePort{
		{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")},
		{Name: "tcp-echo", Port: 9000, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("tcp-echo")},
		{Name: "udp-echo", Port: 9000, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("udp-echo")},
	}
}

// CreateService creates a ClusterIP Service selecting app=app with ServicePorts; mutators may
// change it first (type, affinity, traffic policy). It is deleted when the test ends.
func (f *Framework) CreateService(app string, mutate ...func(*corev1.Service)) *corev1.Service {
	f.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace, Name: app},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": app},
			Ports:    ServicePorts(),
		},
	}
	for _, m := range mutate {
		m(svc)
	}
	created, err := f.Client.CoreV1().Services(f.Namespace).Create(f.ctx, svc, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatalf("create service %s: %v", app, err)
	}
	f.t.Cleanup(func() {
		err := f.Client.CoreV1().Services(f.Namespace).Delete(f.ctx, created.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			f.t.Errorf("delete service %s: %v", created.Name, err)
		}
	})
	return created
}

// Endpoint is one endpoint of a Service as its EndpointSlices publish it.
type Endpoint struct {
	IP                          string
	Ready, Serving, Terminating bool
}

// Endpoints lists the endpoints the EndpointSlices of svc publish, sorted by IP.
func (f *Framework) Endpoints(svc *corev1.Service) ([]Endpoint, error) {
	slices, err := f.Client.DiscoveryV1().EndpointSlices(svc.Namespace).List(f.ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name,
	})
	if err != nil {
		return nil, fmt.Errorf("list endpointslices of %s: %w", svc.Name, err)
	}
	var out []Endpoint
	seen := map[string]bool{}
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 || seen[e.Addresses[0]] {
				continue
			}
			seen[e.Addresses[0]] = true
			c := e.Conditions
			out = append(out, Endpoint{IP: e.Addresses[0], Ready: isTrue(c.Ready), Serving: isTrue(c.Serving), Terminating: isTrue(c.Terminating)})
		}
	}
	sortEndpoints(out)
	return out, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// Eventually polls cond until it returns nil or the framework's timeout passes, then fails the
// test with cond's last error.
func (f *Framework) Eventually(what string, cond func(ctx context.Context) error) {
	f.t.Helper()
	if err := f.poll(cond); err != nil {
		path, ipvs := f.dumpNodeState()
		f.t.Fatalf("%s: %v\nnode state in %s; IPVS:\n%s", what, err, path, ipvs)
	}
}

func (f *Framework) poll(cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(f.ctx, f.Timeout)
	defer cancel()
	start := time.Now()
	interval := 50 * time.Millisecond
	for {
		last := cond(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still failing after %s: %w", time.Since(start).Round(time.Millisecond), last)
		case <-time.After(interval):
		}
		interval = min(interval*2, time.Second)
	}
}

// ServiceURL is http://CLUSTER-IP:PORT/PATH for the Service's port named "http".
func ServiceURL(svc *corev1.Service, path string) string {
	return "http://" + net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(portNamed(svc, "http").Port)) + path
}

// NodePortURL is http://NODE-IP:NODEPORT/PATH for the Service's port named "http".
func (f *Framework) NodePortURL(svc *corev1.Service, path string) string {
	return "http://" + net.JoinHostPort(f.Bed.NodeIP().String(), fmt.Sprint(portNamed(svc, "http").NodePort)) + path
}

// PodURL is http://POD-IP:HTTP-PORT/PATH.
func PodURL(p *podsim.Pod, path string) string {
	return "http://" + net.JoinHostPort(p.IP.String(), fmt.Sprint(p.HTTPPort())) + path
}

func portNamed(svc *corev1.Service, name string) corev1.ServicePort {
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return p
		}
	}
	return corev1.ServicePort{}
}
