package e2e

// Issue 14's adversarial scenario: a Service author tries to take addresses the node itself
// depends on, through spec.externalIPs and status.loadBalancer.ingress, against the real
// kernel. The bed's API server listens on the node's loopback; here it is made remote, as in
// a real cluster: the proxier is restarted with a kubeconfig naming the outside host, where
// the test forwards TCP to the API server. An externalIP on that address with port 6443 is
// then exactly CVE-2020-8554: were it programmed, the proxier's own watch would go to the
// attacker's pod.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// apiServerFromOutside forwards TCP on the outside host's address, port 6443, to the bed's
// API server (127.0.0.1:6443 on the node) for the test's length, and returns that address.
func (f *Framework) apiServerFromOutside() string {
	f.t.Helper()
	addr := net.JoinHostPort(f.Bed.OutsideIP().String(), "6443")
	var ln net.Listener
	err := f.Bed.Outside.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		f.t.Fatalf("listen on %s in the outside host: %v", addr, err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", "127.0.0.1:6443") // the node's netns: this goroutine is not in Outside
			if err != nil {
				c.Close()
				continue
			}
			track(c)
			track(up)
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	f.t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return addr
}

// kubeconfigFor writes a copy of the bed's admin kubeconfig whose server is https://addr (the
// certificate is checked for "localhost", one of its names) and returns its path.
func (f *Framework) kubeconfigFor(addr string) string {
	f.t.Helper()
	cfg, err := clientcmd.LoadFromFile(f.Bed.Kubeconfig)
	if err != nil {
		f.t.Fatalf("load %s: %v", f.Bed.Kubeconfig, err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + addr
		c.TLSServerName = "localhost"
	}
	path := filepath.Join(f.Bed.LogDir, "kubeconfig-"+f.Namespace)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		f.t.Fatalf("write %s: %v", path, err)
	}
	return path
}

// hijack is one address a Service author tries to take.
type hijack struct {
	name   string
	addr   string
	lb     bool   // as a LoadBalancer ingress IP (status), else as an externalIP
	reason string // the kubevs_objects_skipped_total reason of the refusal
}

// hijackPorts: HTTP and the API server's port, both to the pods' HTTP server.
func hijackPorts() []corev1.ServicePort {
	return []corev1.ServicePort{
		{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")},
		{Name: "apiserver", Port: 6443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")},
	}
}

// tryHijack creates a Service selecting app=evil that claims h.addr. It returns the Service,
// or nil and the API server's refusal when the API itself does not accept the address.
func (f *Framework) tryHijack(h hijack) (*corev1.Service, error) {
	f.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace, Name: "hijack-" + h.name},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "evil"}, Ports: hijackPorts()},
	}
	if h.lb {
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	} else {
		svc.Spec.ExternalIPs = []string{h.addr}
	}
	created, err := f.Client.CoreV1().Services(f.Namespace).Create(f.ctx, svc, metav1.CreateOptions{})
	if apierrors.IsInvalid(err) {
		return nil, err
	}
	if err != nil {
		f.t.Fatalf("create service %s: %v", svc.Name, err)
	}
	f.t.Cleanup(func() {
		err := f.Client.CoreV1().Services(f.Namespace).Delete(f.ctx, created.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			f.t.Errorf("delete service %s: %v", created.Name, err)
		}
	})
	if !h.lb {
		return created, nil
	}
	created.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: h.addr}}
	updated, err := f.Client.CoreV1().Services(f.Namespace).UpdateStatus(f.ctx, created, metav1.UpdateOptions{})
	if apierrors.IsInvalid(err) {
		return nil, err
	}
	if err != nil {
		f.t.Fatalf("set the LoadBalancer ingress of service %s: %v", svc.Name, err)
	}
	return updated, nil
}

func TestServiceAuthorCannotHijackNodeAddresses(t *testing.T) {
	RequireProxier(t)
	f := New(t)
	api := f.apiServerFromOutside()
	apiIP, _, _ := net.SplitHostPort(api)
	kubeconfig := f.kubeconfigFor(api)
	f.swapProxier("remote-apiserver", func(args []string) []string { return replaceArg(args, "--kubeconfig=", kubeconfig) })

	victim := f.CreateService("victim")
	victimPods := f.CreatePods("victim", 1)
	evil := f.CreatePods("evil", 1)
	f.ExpectHTTP(f.FromNode(), ServiceURL(victim, "/hostname")).Hostname(victimPods...)
	before := f.mustMetrics()

	nodeIP := f.Bed.NodeIP().String()
	hijacks := []hijack{
		{"api-externalip", apiIP, false, "refused_api_server_address"},
		{"api-lb", apiIP, true, "refused_api_server_address"},
		{"node-externalip", nodeIP, false, "refused_node_address"},
		{"node-lb", nodeIP, true, "refused_node_address"},
		{"clusterip", victim.Spec.ClusterIP, false, "refused_cluster_ip"},
		{"loopback-externalip", "127.0.0.1", false, "refused_special_address"},
		{"loopback-lb", "127.0.0.1", true, "refused_special_address"},
		{"linklocal-externalip", "169.254.10.10", false, "refused_special_address"},
		{"linklocal-lb", "169.254.10.10", true, "refused_special_address"},
		{"podcidr-externalip", "10.244.0.250", false, "refused_pod_cidr"},
	}
	type taken struct {
		hijack
		svc *corev1.Service
	}
	var reached []taken
	for _, h := range hijacks {
		svc, err := f.tryHijack(h)
		if err != nil {
			t.Logf("%s: the API server itself refuses %s: %v", h.name, h.addr, err)
			continue
		}
		reached = append(reached, taken{h, svc})
	}
	if len(reached) < 6 {
		t.Fatalf("only %d of %d hijacks reached kubevs: the scenario tests too little", len(reached), len(hijacks))
	}

	// The proxier keeps syncing (it still reaches the API server): a Service created after
	// the hijacks is programmed, and the API server still answers at its address.
	later := f.CreateService("later")
	laterPods := f.CreatePods("later", 1)
	f.ExpectHTTP(f.FromNode(), ServiceURL(later, "/hostname")).Hostname(laterPods...)
	f.expectAPIServerAt(kubeconfig)

	// Each hijack: refused, counted, reported on the Service; its ClusterIP still works.
	state, err := vips(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, r := range reached {
		want[r.reason]++
		event := "ExternalIPRefused"
		if r.lb {
			event = "LoadBalancerIPRefused"
		}
		f.expectEvent(r.svc, event, r.addr)
		if r.addr != victim.Spec.ClusterIP && state[r.addr] {
			t.Errorf("%s: %s is bound to kube-ipvs0", r.name, r.addr)
		}
		for _, port := range []string{"80", "6443"} {
			vs := net.JoinHostPort(r.addr, port)
			if r.addr == victim.Spec.ClusterIP && port == "80" {
				continue // the victim's own virtual server, checked below
			}
			if has, err := ipvsHas(f.ctx, vs); err != nil || has {
				t.Errorf("%s: a virtual server on %s (err %v)", r.name, vs, err)
			}
		}
		f.ExpectHTTP(f.FromNode(), ServiceURL(r.svc, "/hostname")).Hostname(evil...)
	}
	// The counters are read once every refusal has its Event: a LoadBalancer IP arrives by a
	// status update after the Service, and one read right after the VIP check once missed it.
	f.Eventually("the refusals counted by reason", func(ctx context.Context) error {
		after, err := metrics(ctx)
		if err != nil {
			return err
		}
		// The counter counts each refused address of each Service once, whatever syncs
		// recompute it (daemon/skips.go): exactly one per hijack.
		for reason, n := range want {
			if got := after[skipped(reason)] - before[skipped(reason)]; got != float64(n) {
				return fmt.Errorf("%s rose by %v, want %d", skipped(reason), got, n)
			}
		}
		return nil
	})
	// The victim's ClusterIP answers with its own pods only.
	f.alwaysHostname(f.FromNode(), ServiceURL(victim, "/hostname"), victimPods[0].Name, 10)
	f.alwaysHostname(f.FromNode(), ServiceURL(later, "/hostname"), laterPods[0].Name, 3)
}

// expectAPIServerAt waits until a client of kubeconfig gets the API server's version: the
// address it names still leads to the API server, not to a Service's pods.
func (f *Framework) expectAPIServerAt(kubeconfig string) {
	f.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		f.t.Fatalf("load %s: %v", kubeconfig, err)
	}
	cfg.Timeout = perTry
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.Eventually("the API server answers at "+cfg.Host, func(context.Context) error {
		v, err := c.Discovery().ServerVersion()
		if err != nil {
			return err
		}
		if v.GitVersion == "" {
			return errors.New("no version")
		}
		return nil
	})
}
