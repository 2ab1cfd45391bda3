//go:build nodee2e

package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/test/bed"
)

// TestImage holds test/testserver and cmd/fetch (node-e2e.sh builds it).
const TestImage = "kubevs.io/node-test:0.1.0"

// startNodeBed makes this guest a node: the bed's control plane with kube-scheduler, this
// guest's node link, and a kubelet-run Node (KubeletNode), IPv4 only; and, when e names
// cmd/clusterdns, the cluster DNS with its kube-dns Service (dns_test.go).
func startNodeBed(ctx context.Context, t *testing.T, e env) *bed.Bed {
	t.Helper()
	prepareHost(t, e, nodeName)
	addNodeLink(t)
	return startBed(ctx, t, e, bed.Config{NodeName: nodeName, StartTimeout: 10 * time.Minute})
}

// startBed starts the bed of a real node as cfg names it (node name, API server addresses,
// start timeout): its control plane, kube-scheduler, and the cluster DNS when e names
// cmd/clusterdns; closed when the test ends.
func startBed(ctx context.Context, t *testing.T, e env, cfg bed.Config) *bed.Bed {
	t.Helper()
	cfg.Components = []bed.Component{schedulerComponent(t, e)}
	if e.dnsBin != "" {
		cfg.Components = append(cfg.Components, dnsComponent(e.dnsBin))
	}
	cfg.ControlPlaneBin, cfg.LogDir = e.controlPlane, e.logDir
	cfg.Network, cfg.KubeletNode = bed.NetworkConfig{IPv4Only: true}, true
	b, err := bed.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start bed: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if e.dnsBin != "" {
		createKubeDNS(ctx, t, b.Client)
	}
	return b
}

// TestRealNode: containerd + kubelet + kube-scheduler join the bed; the node is NotReady
// without a CNI network; `kubectl apply -f kubevs.yaml` installs kubevs; the node turns Ready;
// a client pod reaches a Deployment through its Service's ClusterIP, then by the Service's
// name through the cluster DNS (itself reached through kubevs at the kube-dns ClusterIP).
func TestRealNode(t *testing.T) {
	if !testenv.InVM() {
		t.Fatal("this test makes the machine it runs on a Kubernetes node: run it with make node-e2e, in the test VM")
	}
	e := readEnv(t)
	if e.dnsBin == "" {
		t.Fatal(errNoDNS)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	mark, report := timeline(t)
	defer report()

	b := startNodeBed(ctx, t, e)
	mark("control plane and kube-scheduler ready")

	startContainerd(ctx, t, e)
	mark("containerd ready, images imported")
	kubelet := startKubelet(ctx, t, e, b)
	diagnoseOnFailure(t, b.Client, e.logDir, kubelet)
	mark("kubelet healthy")

	// Without a CNI network the kubelet registers the node NotReady, naming the network.
	node := waitNode(ctx, t, b.Client, "registered, NotReady for want of a CNI network", func(n *corev1.Node) error {
		ready := condition(n, corev1.NodeReady)
		if ready == nil || ready.Status == corev1.ConditionTrue {
			return fmt.Errorf("Ready condition %+v", ready)
		}
		if !strings.Contains(ready.Message, "network") {
			return fmt.Errorf("NotReady, but not for the network: %s", ready.Message)
		}
		if len(n.Spec.PodCIDRs) == 0 {
			return fmt.Errorf("no spec.podCIDRs yet")
		}
		return nil
	})
	t.Logf("node %s NotReady: %s; podCIDRs %v", node.Name, condition(node, corev1.NodeReady).Message, node.Spec.PodCIDRs)
	mark("node NotReady (no CNI)")

	// Install kubevs as README's "Install on a cluster" says: the API server address in the
	// manifest, then kubectl apply.
	manifest := manifestFor(t, e, "127.0.0.1")
	t.Logf("kubectl apply -f kubevs.yaml:\n%s", kubectlApply(ctx, t, e, b.Kubeconfig, manifest))
	mark("kubectl apply")

	waitNode(ctx, t, b.Client, "Ready", nodeReady)
	mark("node Ready")
	for _, f := range []string{filepath.Join(cniConfDir, "00-kubevs.conflist"), filepath.Join(cniBinDir, "kubevs"), filepath.Join(cniBinDir, "kubevs-ipam")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after install: %v", err)
		}
	}
	waitPods(ctx, t, b.Client, "kubevs-system", "app.kubernetes.io/name=kubevs", 1)
	mark("kubevs pod Ready")

	// A Deployment of two test servers, a ClusterIP Service, and a client pod.
	servers := createServers(ctx, t, b.Client, 2)
	mark("test server Deployment available")
	msg := runClient(ctx, t, b.Client, "client", fmt.Sprintf("http://%s:80/hostname", servers.Spec.ClusterIP))
	mark("client pod reached the ClusterIP")
	pods, err := b.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	// fetch's message is "ok <body> attempt=N after=D"; the body is the pod's name and a newline.
	if f := strings.Fields(msg); len(f) < 2 || f[0] != "ok" || !slices.Contains(names, f[1]) {
		t.Errorf("client through %s got %q, want the name of one of %v", servers.Spec.ClusterIP, msg, names)
	}
	t.Logf("client through ClusterIP %s: %s", servers.Spec.ClusterIP, msg)

	// By name, as pods reach Services: the short name through the pod's search path, resolved
	// by the cluster DNS at the kube-dns ClusterIP.
	msg = runClient(ctx, t, b.Client, "client-by-name", "http://web:80/hostname")
	mark("client pod reached the Service by name")
	if f := strings.Fields(msg); len(f) < 2 || f[0] != "ok" || !slices.Contains(names, f[1]) {
		t.Errorf("client through http://web:80 got %q, want the name of one of %v", msg, names)
	}
	t.Logf("client through the name web: %s", msg)

	// The same Service's NodePort on the node's address, from the host's network namespace.
	url := fmt.Sprintf("http://%s:%d/hostname", nodeIP, servers.Spec.Ports[0].NodePort)
	body := hostGet(ctx, t, url)
	mark("host reached the NodePort")
	if !slices.Contains(names, strings.TrimSpace(body)) {
		t.Errorf("GET %s from the host: %q, want the name of one of %v", url, body, names)
	}
	t.Logf("host through NodePort %s: %s", url, body)
}

// hostGet GETs url from the test's (the host's) network namespace until it answers 200.
func hostGet(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	var body string
	if err := pollFor(ctx, 3*time.Minute, nil, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
		if err != nil {
			return fmt.Errorf("read %s: %w", url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		body = string(data)
		return nil
	}); err != nil {
		t.Fatalf("GET %s from the host: %v", url, err)
	}
	return body
}

func condition(n *corev1.Node, typ corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == typ {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// waitNode polls the node until check passes (10 minutes: everything runs under TCG).
func waitNode(ctx context.Context, t *testing.T, c kubernetes.Interface, what string, check func(*corev1.Node) error) *corev1.Node {
	t.Helper()
	return waitNodeNamed(ctx, t, c, nodeName, what, check)
}

// waitNodeNamed is waitNode for the node called nodeName.
func waitNodeNamed(ctx context.Context, t *testing.T, c kubernetes.Interface, nodeName, what string, check func(*corev1.Node) error) *corev1.Node {
	t.Helper()
	var node *corev1.Node
	if err := pollFor(ctx, 10*time.Minute, nil, func() error {
		n, err := c.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		node = n
		return check(n)
	}); err != nil {
		t.Fatalf("node %s %s: %v", nodeName, what, err)
	}
	return node
}

// waitPods waits until n pods match selector in ns and all are Ready.
func waitPods(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, selector string, n int) {
	t.Helper()
	if err := pollFor(ctx, 10*time.Minute, nil, func() error {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		ready := 0
		var states []string
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
			states = append(states, podState(&p))
		}
		if ready < n {
			return fmt.Errorf("%d of %d pods Ready: %s", ready, n, strings.Join(states, "; "))
		}
		return nil
	}); err != nil {
		t.Fatalf("pods %s in %s: %v", selector, ns, err)
	}
}

// podState summarizes a pod for a failure message.
func podState(p *corev1.Pod) string {
	s := p.Name + " " + string(p.Status.Phase)
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		switch {
		case cs.State.Waiting != nil:
			s += fmt.Sprintf(" %s waiting %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Terminated != nil:
			s += fmt.Sprintf(" %s terminated %s %s", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.Message)
		case cs.State.Running != nil:
			s += fmt.Sprintf(" %s running ready=%v", cs.Name, cs.Ready)
		}
	}
	return s
}

// createServers creates the web Deployment (testserver, HTTP on 8080) and its NodePort
// Service (port 80), and waits for the replicas.
func createServers(ctx context.Context, t *testing.T, c kubernetes.Interface, replicas int32) *corev1.Service {
	t.Helper()
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: TestImage,
					Command: []string{"/testserver", "--http-port=8080", "--tcp-port=0", "--udp-port=0"},
					Ports:   []corev1.ContainerPort{{ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/hostname", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 2},
				}}},
			},
		},
	}
	create(ctx, t, "Deployment web", func() error {
		_, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: labels, Ports: []corev1.ServicePort{{
			Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
	}
	create(ctx, t, "Service web", func() error {
		_, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
		return err
	})
	created, err := c.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get Service web: %v", err)
	}
	waitPods(ctx, t, c, "default", "app=web", int(replicas))
	return created
}

// runClient runs cmd/fetch in the pod name against url and returns its termination message.
func runClient(ctx context.Context, t *testing.T, c kubernetes.Interface, name, url string) string {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "fetch", Image: TestImage,
				Command: []string{"/fetch", "--url=" + url, "--timeout=3m"},
			}},
		},
	}
	create(ctx, t, "pod "+name, func() error {
		_, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	var msg string
	if err := pollFor(ctx, 10*time.Minute, nil, func() error {
		p, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			msg = p.Status.ContainerStatuses[0].State.Terminated.Message
			return nil
		case corev1.PodFailed:
			t.Fatalf("pod %s failed: %s", name, podState(p))
		}
		return fmt.Errorf("pod %s: %s", name, podState(p))
	}); err != nil {
		t.Fatalf("pod %s: %v", name, err)
	}
	return msg
}

// kubectlApply runs kubectl apply -f manifest until it succeeds (apply is idempotent; seen in
// a loaded guest: "failed to download openapi: ... TLS handshake timeout") and returns its
// output.
// timeline returns mark, which logs a step with the time since timeline was called and
// keeps it, and report, which logs every kept step on one line.
func timeline(t *testing.T) (mark func(what string), report func()) {
	t0 := time.Now()
	var timings []string
	mark = func(what string) {
		d := time.Since(t0).Round(time.Second)
		timings = append(timings, fmt.Sprintf("%s at %s", what, d))
		t.Logf("%s (%s)", what, d)
	}
	return mark, func() { t.Logf("timings: %s", strings.Join(timings, "; ")) }
}

// manifestFor writes install/manifests/kubevs.yaml with the API server at host, as README's
// "Install on a cluster" asks, and returns its path.
func manifestFor(t *testing.T, e env, host string) string {
	t.Helper()
	data, err := os.ReadFile(e.manifest)
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(t.TempDir(), "kubevs.yaml")
	if err := os.WriteFile(manifest, []byte(strings.ReplaceAll(string(data), `"API_SERVER_HOST"`, `"`+host+`"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	return manifest
}

// nodeReady is a waitNode check: the Node's Ready condition is True.
func nodeReady(n *corev1.Node) error {
	if c := condition(n, corev1.NodeReady); c == nil || c.Status != corev1.ConditionTrue {
		return fmt.Errorf("Ready condition %+v", c)
	}
	return nil
}

// hasPodRange is a waitNode check: the Node has its spec.podCIDRs.
func hasPodRange(n *corev1.Node) error {
	if len(n.Spec.PodCIDRs) == 0 {
		return errors.New("no spec.podCIDRs yet")
	}
	return nil
}

func kubectlApply(ctx context.Context, t *testing.T, e env, kubeconfig, manifest string) string {
	t.Helper()
	var out []byte
	if err := pollFor(ctx, 10*time.Minute, nil, func() error {
		var err error
		out, err = exec.CommandContext(ctx, find(t, e.nodeBin, "kubectl"), "--kubeconfig="+kubeconfig, "apply", "-f", manifest).CombinedOutput()
		if err != nil {
			return fmt.Errorf("kubectl apply -f %s: %w: %s", manifest, err, out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// create retries a create the loaded API server may time out (seen in the guest under TCG:
// "Timeout: request did not complete within requested timeout"); AlreadyExists means an
// earlier attempt went through.
func create(ctx context.Context, t *testing.T, what string, do func() error) {
	t.Helper()
	if err := pollFor(ctx, 5*time.Minute, nil, func() error {
		if err := do(); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("create %s: %v", what, err)
	}
}
