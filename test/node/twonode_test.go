//go:build nodee2e

package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/test/bed"
)

// The two nodes of TestTwoNodes, each a guest with eth0 on one L2 link (kubevs-vm --link).
var (
	firstNode  = nodeSpec{name: nodeName, ip: nodeIP}
	secondNode = nodeSpec{name: "kubevs-node-2", ip: "192.168.77.2"}
)

// Files in the folder both guests share: the first writes the second's kubeconfig and the
// CA, then ready; at the end it writes its verdict to done, which ends the second.
const (
	sharedKubeconfig = "second.kubeconfig"
	sharedCA         = "ca.crt"
	sharedReady      = "ready"
	sharedDone       = "done"
	// sharedRoutes holds the second node's routes to the other pod ranges (shareRoutesFor).
	sharedRoutes = "second.routes"
)

// TestTwoNodes runs in two guests at once (make two-node-e2e): KUBEVS_NODE_ROLE=first runs
// the control plane and the first node, and judges; KUBEVS_NODE_ROLE=second is a second
// kubelet + containerd joining it over the link. kubevs is installed on both by the same
// kubectl apply. Each node routes the other's pod range via its address (what a host-gw
// network does). Judged: pod-to-pod across the nodes; a NodePort on the second node to a pod
// on the first; externalTrafficPolicy=Local on the node without an endpoint drops, on the
// node with one answers; healthCheckNodePort answers 200 where the endpoint is and 503 where
// it is not, as a load balancer probing both nodes sees it.
func TestTwoNodes(t *testing.T) {
	if !testenv.InVM() {
		t.Fatal("this test makes the machine it runs on a Kubernetes node: run it with make two-node-e2e")
	}
	e := readEnv(t)
	shared := os.Getenv("KUBEVS_NODE_SHARED")
	if shared == "" {
		t.Fatal("KUBEVS_NODE_SHARED is not set: run this test with make two-node-e2e")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	switch role := os.Getenv("KUBEVS_NODE_ROLE"); role {
	case "first":
		runFirstNode(ctx, t, e, shared)
	case "second":
		runSecondNode(ctx, t, e, shared)
	default:
		t.Fatalf("KUBEVS_NODE_ROLE=%q, want first or second", role)
	}
}

func runSecondNode(ctx context.Context, t *testing.T, e env, shared string) {
	kubelet := joinSecondNode(ctx, t, e, shared)
	routeFromShared(ctx, t, shared, kubelet)
	t.Log("routes to the other node's pods in place")
	awaitVerdict(ctx, t, shared, kubelet, 50*time.Minute)
}

// joinSecondNode makes this guest the second node: its link address, then, once the first
// node's control plane is up (sharedReady), containerd and its kubelet with the shared
// kubeconfig. It returns the kubelet; the routes the first node shares come after the
// node is Ready (routeFromShared).
func joinSecondNode(ctx context.Context, t *testing.T, e env, shared string) *bed.Process {
	t.Helper()
	prepareHost(t, e, secondNode.name)
	linkUp(t, secondNode.ip)
	t0 := time.Now()
	if err := pollFor(ctx, 30*time.Minute, nil, func() error {
		_, err := os.Stat(filepath.Join(shared, sharedReady))
		return err
	}); err != nil {
		t.Fatalf("waiting for the first node's control plane: %v", err)
	}
	t.Logf("first node's control plane ready (%s)", time.Since(t0).Round(time.Second))
	startContainerd(ctx, t, e)
	kubeconfig := filepath.Join(shared, sharedKubeconfig)
	kubelet := startKubeletAs(ctx, t, e, secondNode, kubeconfig, filepath.Join(shared, sharedCA))
	t.Logf("kubelet healthy (%s)", time.Since(t0).Round(time.Second))
	return kubelet
}

// awaitVerdict keeps the second node up until the first writes its verdict (sharedDone),
// for at most timeout, and fails when the kubelet exits meanwhile.
func awaitVerdict(ctx context.Context, t *testing.T, shared string, kubelet *bed.Process, timeout time.Duration) {
	t.Helper()
	var verdict []byte
	if err := pollFor(ctx, timeout, kubelet, func() (err error) {
		verdict, err = os.ReadFile(filepath.Join(shared, sharedDone))
		return err
	}); err != nil {
		t.Fatalf("waiting for the first node's verdict: %v", err)
	}
	t.Logf("first node's verdict: %s", verdict)
}

func runFirstNode(ctx context.Context, t *testing.T, e env, shared string) {
	mark, report := timeline(t)
	defer report()
	// The second guest stops when done holds the verdict, whatever happens here.
	defer writeVerdict(t, shared)

	b := startFirstNode(ctx, t, e, shared)
	mark("control plane ready, second node's kubeconfig shared")

	startContainerd(ctx, t, e)
	kubelet := startKubelet(ctx, t, e, b)
	diagnoseOnFailure(t, b.Client, e.logDir, kubelet)
	mark("first kubelet healthy")

	// Both nodes' kubevs reach the API server on the first node's link address.
	kubectlApply(ctx, t, e, b.Kubeconfig, manifestFor(t, e, firstNode.ip))
	mark("kubectl apply")
	for _, n := range []nodeSpec{firstNode, secondNode} {
		waitNodeNamed(ctx, t, b.Client, n.name, "Ready", nodeReady)
	}
	mark("both nodes Ready")
	routePodRanges(ctx, t, b.Client, firstNode)
	shareRoutesFor(ctx, t, b.Client, secondNode, shared)
	waitPods(ctx, t, b.Client, "kubevs-system", "app.kubernetes.io/name=kubevs", 2)
	mark("kubevs pods Ready on both nodes")

	// web-a on the first node, web-b on the second; Services select web-a only.
	for _, p := range []struct {
		name string
		node nodeSpec
	}{{"web-a", firstNode}, {"web-b", secondNode}} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: map[string]string{"app": "web2", "pod": p.name}},
			Spec: corev1.PodSpec{NodeName: p.node.name, Containers: []corev1.Container{{
				Name: "web", Image: TestImage,
				Command: []string{"/testserver", "--http-port=8080", "--tcp-port=0", "--udp-port=0"},
				Ports:   []corev1.ContainerPort{{ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/hostname", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 2},
			}}},
		}
		create(ctx, t, "pod "+p.name, func() error {
			_, err := b.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
			return err
		})
	}
	// web-a-local is a LoadBalancer: the API server allocates a healthCheckNodePort only to
	// LoadBalancer Services with eTP=Local (no cloud here gives it an ingress IP; its node
	// ports and health check port are what a load balancer would use).
	for name, typ := range map[string]corev1.ServiceType{
		"web-a": corev1.ServiceTypeNodePort, "web-a-local": corev1.ServiceTypeLoadBalancer,
	} {
		policy := corev1.ServiceExternalTrafficPolicyCluster
		if typ == corev1.ServiceTypeLoadBalancer {
			policy = corev1.ServiceExternalTrafficPolicyLocal
		}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Type: typ, ExternalTrafficPolicy: policy,
				Selector: map[string]string{"pod": "web-a"},
				Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
		}
		create(ctx, t, "Service "+name, func() error {
			_, err := b.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
			return err
		})
	}
	waitPods(ctx, t, b.Client, "default", "app=web2", 2)
	mark("web-a and web-b Ready")
	webA, err := b.Client.CoreV1().Pods("default").Get(ctx, "web-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := b.Client.CoreV1().Services("default").Get(ctx, "web-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	local, err := b.Client.CoreV1().Services("default").Get(ctx, "web-a-local", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Pod to pod across the nodes: a client on the second node to web-a's pod IP.
	msg := runClientOn(ctx, t, b.Client, "client-pod", secondNode.name, fmt.Sprintf("http://%s:8080/hostname", webA.Status.PodIP))
	if f := strings.Fields(msg); len(f) < 2 || f[0] != "ok" || f[1] != "web-a" {
		t.Errorf("client on %s to web-a's pod IP %s: %q, want web-a", secondNode.name, webA.Status.PodIP, msg)
	}
	mark("pod to pod across the nodes")
	// A client on the second node through the ClusterIP (its endpoint on the first node).
	msg = runClientOn(ctx, t, b.Client, "client-svc", secondNode.name, fmt.Sprintf("http://%s:80/hostname", cluster.Spec.ClusterIP))
	if f := strings.Fields(msg); len(f) < 2 || f[0] != "ok" || f[1] != "web-a" {
		t.Errorf("client on %s through ClusterIP %s: %q, want web-a", secondNode.name, cluster.Spec.ClusterIP, msg)
	}
	mark("ClusterIP from the second node to a pod on the first")

	// NodePort on the second node, whose only endpoint is on the first.
	np := cluster.Spec.Ports[0].NodePort
	if body := strings.TrimSpace(hostGet(ctx, t, fmt.Sprintf("http://%s:%d/hostname", secondNode.ip, np))); body != "web-a" {
		t.Errorf("NodePort %s:%d: %q, want web-a", secondNode.ip, np, body)
	}
	mark("NodePort on the second node to the pod on the first")

	// externalTrafficPolicy=Local: the node with the endpoint answers, the other drops.
	lnp, hc := local.Spec.Ports[0].NodePort, local.Spec.HealthCheckNodePort
	if hc == 0 {
		t.Fatalf("Service web-a-local (%s, eTP=%s) has no healthCheckNodePort", local.Spec.Type, local.Spec.ExternalTrafficPolicy)
	}
	if body := strings.TrimSpace(hostGet(ctx, t, fmt.Sprintf("http://%s:%d/hostname", firstNode.ip, lnp))); body != "web-a" {
		t.Errorf("eTP=Local NodePort %s:%d: %q, want web-a", firstNode.ip, lnp, body)
	}
	for i := range 3 {
		if body, err := getOnce(ctx, fmt.Sprintf("http://%s:%d/hostname", secondNode.ip, lnp)); err == nil {
			t.Errorf("eTP=Local NodePort %s:%d (no local endpoint), try %d: answered %q, want no answer", secondNode.ip, lnp, i+1, body)
		}
	}
	mark("eTP=Local: answered with the endpoint, dropped without")

	// healthCheckNodePort as a load balancer probes it on each node.
	for _, c := range []struct {
		ip   string
		want int
	}{{firstNode.ip, 200}, {secondNode.ip, 503}} {
		url := fmt.Sprintf("http://%s:%d/healthz", c.ip, hc)
		if err := pollFor(ctx, 2*time.Minute, nil, func() error {
			code, body, err := getStatus(ctx, url)
			if err != nil {
				return err
			}
			if code != c.want {
				return fmt.Errorf("GET %s: %d %s, want %d", url, code, body, c.want)
			}
			t.Logf("GET %s: %d %s", url, code, strings.TrimSpace(body))
			return nil
		}); err != nil {
			t.Errorf("healthCheckNodePort: %v", err)
		}
	}
	mark("healthCheckNodePort 200 with the endpoint, 503 without")
}

// startFirstNode makes this guest the first node's control plane, reached by the second
// node on the link (firstNode.ip): the bed with kube-scheduler and, when e names
// cmd/clusterdns, the cluster DNS with its kube-dns Service; then it shares the second node's
// kubeconfig, the CA and sharedReady.
func startFirstNode(ctx context.Context, t *testing.T, e env, shared string) *bed.Bed {
	t.Helper()
	prepareHost(t, e, firstNode.name)
	linkUp(t, firstNode.ip)
	b := startBed(ctx, t, e, bed.Config{NodeName: firstNode.name, StartTimeout: 15 * time.Minute,
		APIServerIPs: []net.IP{net.ParseIP(firstNode.ip)}})
	if err := b.WriteRemoteNodeKubeconfig(filepath.Join(shared, sharedKubeconfig), secondNode.name, firstNodeServer()); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(b.CACertFile())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{sharedCA: ca, sharedReady: []byte(firstNodeServer())} {
		if err := os.WriteFile(filepath.Join(shared, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// firstNodeServer is the API server's address as the second node reaches it.
func firstNodeServer() string { return fmt.Sprintf("https://%s:6443", firstNode.ip) }

// writeVerdict writes the first node's verdict (ok or failed) to sharedDone, which ends the
// second guest.
func writeVerdict(t *testing.T, shared string) {
	verdict := "ok"
	if t.Failed() {
		verdict = "failed"
	}
	_ = os.WriteFile(filepath.Join(shared, sharedDone), []byte(verdict), 0o644)
}

// linkUp gives eth0 (the guests' shared link) ip/24 and sets it up.
func linkUp(t *testing.T, ip string) {
	t.Helper()
	l, err := netlink.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 (run the guest with kubevs-vm --link): %v", err)
	}
	addr, err := netlink.ParseAddr(ip + "/24")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(l, addr); err != nil {
		t.Fatalf("address %s on eth0: %v", addr, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatalf("set eth0 up: %v", err)
	}
}

// podRoute is a route to another node's pod range via its InternalIP, as a host-gw network
// sets it.
type podRoute struct{ cidr, gw, node string }

// otherPodRanges lists a route to every pod range of the nodes other than self; it fails
// until each has an InternalIP and a pod range. It needs a client that may list Nodes: a
// kubelet's credentials may read only its own Node (the node authorizer), so the first node,
// with the bed's admin client, computes the second's routes too (sharedRoutes).
func otherPodRanges(ctx context.Context, c kubernetes.Interface, self nodeSpec) ([]podRoute, error) {
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var errs []error
	var out []podRoute
	others := 0
	for _, n := range nodes.Items {
		if n.Name == self.name {
			continue
		}
		others++
		gw := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				gw = a.Address
			}
		}
		if gw == "" || len(n.Spec.PodCIDRs) == 0 {
			errs = append(errs, fmt.Errorf("node %s: InternalIP %q, podCIDRs %v", n.Name, gw, n.Spec.PodCIDRs))
			continue
		}
		for _, cidr := range n.Spec.PodCIDRs {
			out = append(out, podRoute{cidr: cidr, gw: gw, node: n.Name})
		}
	}
	if others == 0 {
		errs = append(errs, errors.New("no other node registered yet"))
	}
	return out, errors.Join(errs...)
}

// addPodRoutes puts routes in this guest's routing table.
func addPodRoutes(t *testing.T, routes []podRoute) error {
	for _, r := range routes {
		_, dst, err := net.ParseCIDR(r.cidr)
		if err != nil {
			return err
		}
		if err := netlink.RouteReplace(&netlink.Route{Dst: dst, Gw: net.ParseIP(r.gw)}); err != nil {
			return fmt.Errorf("route %s via %s: %w", r.cidr, r.gw, err)
		}
		t.Logf("route %s via %s (node %s)", r.cidr, r.gw, r.node)
	}
	return nil
}

// routePodRanges waits until every other node has a pod range and routes it via that node's
// InternalIP, as a host-gw network does.
func routePodRanges(ctx context.Context, t *testing.T, c kubernetes.Interface, self nodeSpec) {
	t.Helper()
	if err := pollFor(ctx, 20*time.Minute, nil, func() error {
		routes, err := otherPodRanges(ctx, c, self)
		if err != nil {
			return err
		}
		return addPodRoutes(t, routes)
	}); err != nil {
		t.Fatalf("route the other nodes' pod ranges: %v", err)
	}
}

// shareRoutesFor writes, for the node peer, the routes to every other node's pod range into
// the shared folder (sharedRoutes: "CIDR GW NODE" lines).
func shareRoutesFor(ctx context.Context, t *testing.T, c kubernetes.Interface, peer nodeSpec, shared string) {
	t.Helper()
	var routes []podRoute
	if err := pollFor(ctx, 20*time.Minute, nil, func() (err error) {
		routes, err = otherPodRanges(ctx, c, peer)
		return err
	}); err != nil {
		t.Fatalf("routes for %s: %v", peer.name, err)
	}
	var b strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&b, "%s %s %s\n", r.cidr, r.gw, r.node)
	}
	shareFile(t, shared, sharedRoutes, []byte(b.String()))
}

// shareFile writes name into the shared folder whole: a temporary name, then a rename, so
// the other guest, which polls for name, never reads it half-written.
func shareFile(t *testing.T, shared, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(shared, "."+name)
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(shared, name)); err != nil {
		t.Fatal(err)
	}
}

// routeFromShared waits for the routes the first node shared (shareRoutesFor) and adds them.
func routeFromShared(ctx context.Context, t *testing.T, shared string, kubelet *bed.Process) {
	t.Helper()
	if err := pollFor(ctx, 30*time.Minute, kubelet, func() error {
		data, err := os.ReadFile(filepath.Join(shared, sharedRoutes))
		if err != nil {
			return err
		}
		var routes []podRoute
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			f := strings.Fields(l)
			if len(f) != 3 {
				return fmt.Errorf("%s: line %q", sharedRoutes, l)
			}
			routes = append(routes, podRoute{cidr: f[0], gw: f[1], node: f[2]})
		}
		return addPodRoutes(t, routes)
	}); err != nil {
		t.Fatalf("route the other nodes' pod ranges: %v", err)
	}
}

// runClientOn runs cmd/fetch in a pod named name on node against url and returns its
// termination message.
func runClientOn(ctx context.Context, t *testing.T, c kubernetes.Interface, name, node, url string) string {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:      node,
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
		case corev1.PodSucceeded, corev1.PodFailed:
			if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Terminated != nil {
				msg = p.Status.ContainerStatuses[0].State.Terminated.Message
			}
			return nil
		}
		return fmt.Errorf("pod %s: %s", name, podState(p))
	}); err != nil {
		t.Fatalf("pod %s: %v", name, err)
	}
	return msg
}

// getStatus makes one GET of url (5 s) and returns the status code and body.
func getStatus(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", url, err)
	}
	return resp.StatusCode, string(data), nil
}

// getOnce makes one GET of url (3 s) and returns what answered, whatever the status.
func getOnce(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	code, body, err := getStatus(ctx, url)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s", code, body), nil
}
