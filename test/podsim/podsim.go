// Package podsim plays the kubelet's part for the test bed: it runs pods as network namespaces
// attached through the node's real CNI conflist (libcni), with the test server as their only
// container, and keeps their Pod objects' status as a kubelet would, so the real EndpointSlice
// controller publishes and withdraws their endpoints.
//
// Lifecycle of a simulated pod, in the kubelet's order:
//   - Create: Pod object bound to the node; netns; CNI ADD (loopback, then the conflist) with
//     K8S_POD_NAMESPACE/NAME/UID in CNI_ARGS; test server started inside; status written
//     (podIP and podIPs, one per family with IPv4 first, so the EndpointSlice controller
//     publishes an IPv6 slice for IPv6 Services on a dual-stack node; hostIPs likewise;
//     phase Running, Ready=True unless asked otherwise).
//   - Delete: graceful delete (the Pod gets a deletionTimestamp and its endpoint turns
//     terminating), the server is stopped and the Pod marked not ready, CNI DEL, netns removed,
//     then the Pod is deleted with grace period 0.
package podsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubevs/kubevs/test/bed"
	"github.com/kubevs/kubevs/test/bed/netns"
)

// Sim runs pods on one bed node. It is safe for concurrent use.
type Sim struct {
	client     kubernetes.Interface
	nodeName   string
	nodeIPs    []string
	network    *bed.Network
	testserver string
	prefix     string
	logDir     string

	mu   sync.Mutex
	pods map[string]*Pod // by namespace/name, while they exist
}

// New returns a simulator for b's node that runs the testserver binary in each pod.
func New(b *bed.Bed, testserver string) *Sim {
	var nodeIPs []string
	for _, ip := range b.NodeIPs() {
		nodeIPs = append(nodeIPs, ip.String())
	}
	return &Sim{
		client:     b.Client,
		nodeName:   b.NodeName(),
		nodeIPs:    nodeIPs,
		network:    b.Network,
		testserver: testserver,
		prefix:     b.NetnsPrefix(),
		logDir:     b.LogDir,
		pods:       map[string]*Pod{},
	}
}

// Ports the test server listens on unless a PodSpec says otherwise.
const (
	DefaultHTTPPort = 8080
	DefaultEchoPort = 9000 // TCP and UDP echo
)

// PodSpec describes a simulated pod.
type PodSpec struct {
	Namespace, Name string
	Labels          map[string]string
	// HTTPPort, TCPPort, UDPPort: the test server's ports. Zero means the default; -1 disables.
	HTTPPort, TCPPort, UDPPort int
	// NotReady creates the pod Running but with Ready=False.
	NotReady bool
	// GracePeriod is the pod's terminationGracePeriodSeconds. Default 30.
	GracePeriod int64
}

func (s *PodSpec) setDefaults() {
	port := func(p *int, def int) {
		switch *p {
		case 0:
			*p = def
		case -1:
			*p = 0
		}
	}
	port(&s.HTTPPort, DefaultHTTPPort)
	port(&s.TCPPort, DefaultEchoPort)
	port(&s.UDPPort, DefaultEchoPort)
	if s.Namespace == "" {
		s.Namespace = metav1.NamespaceDefault
	}
	if s.GracePeriod == 0 {
		s.GracePeriod = 30
	}
}

// containerPorts are the pod's declared ports, named so Services can target them by name.
func (s *PodSpec) containerPorts() []corev1.ContainerPort {
	var out []corev1.ContainerPort
	add := func(name string, port int, proto corev1.Protocol) {
		if port != 0 {
			out = append(out, corev1.ContainerPort{Name: name, ContainerPort: int32(port), Protocol: proto})
		}
	}
	add("http", s.HTTPPort, corev1.ProtocolTCP)
	add("tcp-echo", s.TCPPort, corev1.ProtocolTCP)
	add("udp-echo", s.UDPPort, corev1.ProtocolUDP)
	return out
}

// Pod is a running simulated pod.
type Pod struct {
	sim  *Sim
	spec PodSpec
	// Namespace, Name and UID identify the Pod object.
	Namespace, Name, UID string
	// IP is the IPv4 address CNI gave the pod, its primary one.
	IP net.IP
	// IPv6 is the IPv6 address CNI gave the pod; nil on an IPv4-only node.
	IPv6 net.IP
	// NS is the pod's network namespace.
	NS *netns.NS

	containerID string
	rt          *libcni.RuntimeConf
	server      *bed.Process
	deleteOnce  sync.Once
	deleteErr   error
}

// Key is "namespace/name".
func (p *Pod) Key() string { return p.Namespace + "/" + p.Name }

// Spec is the spec the pod was created with, defaults filled in.
func (p *Pod) Spec() PodSpec { return p.spec }

// HTTPPort is the port of the pod's HTTP server.
func (p *Pod) HTTPPort() int { return p.spec.HTTPPort }

// Create runs a pod to Running (and Ready unless spec.NotReady). On error, whatever was set up
// is torn down again.
func (s *Sim) Create(ctx context.Context, spec PodSpec) (_ *Pod, err error) {
	spec.setDefaults()
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: spec.Namespace, Name: spec.Name, Labels: spec.Labels},
		Spec: corev1.PodSpec{
			NodeName:                      s.nodeName,
			TerminationGracePeriodSeconds: &spec.GracePeriod,
			AutomountServiceAccountToken:  new(false),
			EnableServiceLinks:            new(false),
			Containers: []corev1.Container{{
				Name:  "testserver",
				Image: "kubevs.test/testserver:bed",
				Ports: spec.containerPorts(),
			}},
		},
	}
	created, err := s.client.CoreV1().Pods(spec.Namespace).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", spec.Namespace, spec.Name, err)
	}
	p := &Pod{sim: s, spec: spec, Namespace: spec.Namespace, Name: spec.Name, UID: string(created.UID)}
	p.containerID = "bed-" + p.UID
	defer func() {
		if err != nil {
			err = errors.Join(err, p.teardown(ctx, true))
		}
	}()
	if p.NS, err = netns.New(s.prefix + "-" + spec.Namespace + "-" + spec.Name); err != nil {
		return nil, err
	}
	if err := p.attach(ctx); err != nil {
		return nil, err
	}
	if err := p.startServer(ctx); err != nil {
		return nil, err
	}
	if err := p.writeStatus(ctx, !spec.NotReady, created.CreationTimestamp); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.pods[p.Key()] = p
	s.mu.Unlock()
	return p, nil
}

// attach runs CNI ADD: loopback first, then the node's conflist, as container runtimes do.
func (p *Pod) attach(ctx context.Context) error {
	n := p.sim.network
	p.rt = &libcni.RuntimeConf{
		ContainerID: p.containerID,
		NetNS:       p.NS.Path(),
		IfName:      "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", p.Namespace},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.containerID},
			{"K8S_POD_UID", p.UID},
		},
	}
	lo := *p.rt
	lo.IfName = "lo"
	if _, err := n.CNI.AddNetwork(ctx, n.Loopback, &lo); err != nil {
		return fmt.Errorf("cni add loopback for pod %s: %w", p.Key(), err)
	}
	res, err := n.CNI.AddNetworkList(ctx, n.ConfList, p.rt)
	if err != nil {
		return fmt.Errorf("cni add %s for pod %s: %w", n.ConfList.Name, p.Key(), err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("convert cni result for pod %s: %w", p.Key(), err)
	}
	p.IP, p.IPv6 = familyAddrs(r)
	if p.IP == nil {
		return fmt.Errorf("cni add for pod %s: no IPv4 address in result %v", p.Key(), r)
	}
	return nil
}

// familyAddrs picks the first address of each family from a CNI result.
func familyAddrs(r *types100.Result) (v4, v6 net.IP) {
	for _, ip := range r.IPs {
		switch a := ip.Address.IP; {
		case a.To4() != nil:
			if v4 == nil {
				v4 = a.To4()
			}
		case v6 == nil:
			v6 = a
		}
	}
	return v4, v6
}

// IPs are the pod's addresses as its status.podIPs lists them, IPv4 first.
func (p *Pod) IPs() []net.IP {
	if p.IPv6 == nil {
		return []net.IP{p.IP}
	}
	return []net.IP{p.IP, p.IPv6}
}

// startServer runs the test server inside the pod's netns and waits until it accepts
// connections there.
func (p *Pod) startServer(ctx context.Context) error {
	args := []string{
		"--hostname=" + p.Name,
		"--http-port=" + strconv.Itoa(p.spec.HTTPPort),
		"--tcp-port=" + strconv.Itoa(p.spec.TCPPort),
		"--udp-port=" + strconv.Itoa(p.spec.UDPPort),
	}
	name := "pod-" + p.Namespace + "-" + p.Name
	// nsenter puts the server into the pod's netns; the bed forks it from a thread of its own.
	args = append([]string{"--net=" + p.NS.Path(), "--", p.sim.testserver}, args...)
	var err error
	if p.server, err = bed.StartProcess(ctx, p.sim.logDir, name, "nsenter", args...); err != nil {
		return fmt.Errorf("start test server in pod %s: %w", p.Key(), err)
	}
	port := p.spec.HTTPPort
	if port == 0 {
		port = p.spec.TCPPort
	}
	if port == 0 {
		return nil // UDP only: nothing to connect to; the ready line is in its log.
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := p.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if exited, werr := p.server.Exited(); exited {
			return fmt.Errorf("test server in pod %s exited (%w): %s", p.Key(), werr, p.server.Tail(1024))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("test server in pod %s not listening on %s: %w", p.Key(), addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LogPath is the test server's log file.
func (p *Pod) LogPath() string {
	return filepath.Join(p.sim.logDir, "pod-"+p.Namespace+"-"+p.Name+".log")
}

// Pods returns the pods currently alive, in no particular order.
func (s *Sim) Pods() []*Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Pod, 0, len(s.pods))
	for _, p := range s.pods {
		out = append(out, p)
	}
	return out
}

// Close deletes every pod still alive (force, without the graceful step).
func (s *Sim) Close(ctx context.Context) error {
	var errs []error
	for _, p := range s.Pods() {
		if err := p.teardown(ctx, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
