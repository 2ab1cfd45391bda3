// Package bed is kubevs's test bed: one Kubernetes node made of the current network namespace,
// with a real control plane and a real CNI pod network.
//
// Start brings up, in the network namespace of the calling process (a fresh one on the host,
// the whole guest in the test VM; the bed owns it):
//   - etcd, kube-apiserver and kube-controller-manager (endpointslice controllers only), built
//     from pinned modules by test/scripts/control-plane.sh, on loopback, with certificates, an
//     admin token (group system:masters) and a service-account key generated in Go; RBAC and
//     Node authorization; logs in LogDir;
//   - the Node object, with the pod CIDRs, the node's InternalIPs and a Ready condition;
//   - the node's CNI network: a conflist for the reference bridge plugin (host-local IPAM by
//     default, kubevs-ipam and the kubevs plugin when configured), run through libcni by
//     package podsim;
//   - an "outside" host: a network namespace on the node's subnet behind a veth pair, for
//     NodePort, LoadBalancer and ExternalIP traffic from another machine;
//   - dual-stack, IPv4 first, unless NetworkConfig.IPv4Only: service ranges ServiceCIDR and
//     ServiceCIDRv6, pod ranges, node and outside addresses of both families, pods with
//     one address of each;
//   - optional extra components (kubevs-proxier) once the node is up.
//
// Close stops everything and removes what Start created. A Bed is not safe for concurrent
// Start/Close, but its fields may be read from many goroutines.
package bed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/test/bed/netns"
)

// Config says where the bed finds its binaries and how the node looks.
type Config struct {
	// ControlPlaneBin are the dirs holding etcd, kube-apiserver and kube-controller-manager.
	ControlPlaneBin []string
	// Dir is the bed's work dir (certificates, etcd data, CNI state). Empty: a temporary dir,
	// removed by Close.
	Dir string
	// LogDir receives one log file per component. Empty: Dir/logs.
	LogDir string
	// NodeName names the Node. Default kubevs-node.
	NodeName string
	// Network describes the pod network and the outside host.
	Network NetworkConfig
	// StartTimeout bounds the wait for each component to become ready. Default 3 minutes
	// (the VM emulates its CPU: kube-apiserver takes about 40 s there on an idle machine, and
	// over 3 minutes when other jobs load the host).
	StartTimeout time.Duration
	// Components are started in order once the node and its network are up.
	Components []Component
	// KubeletNode says a real kubelet will register the node (test/node): Start creates no
	// Node object and no CNI network, the API server admits service accounts, and the
	// controller manager also runs the service-account, root CA, Deployment, ReplicaSet,
	// DaemonSet and node IPAM controllers (pod ranges from ClusterCIDR). Use it with
	// Network.IPv4Only.
	KubeletNode bool
	// APIServerIPs are addresses of this machine other nodes reach the API server on (the
	// two-node scenario's link): the API server then listens on every address and its
	// serving certificate names these too. Empty: loopback only.
	APIServerIPs []net.IP
	// ControlPlaneOnly starts the control plane and nothing else: no Node, no CNI network,
	// no outside host, no Components. The node is another machine's (the benchmark serves
	// its guest's node from the host this way).
	ControlPlaneOnly bool
	// NoControllerManager starts no kube-controller-manager: the caller writes every
	// EndpointSlice itself (the benchmark, whose Services have no selector). Started on a
	// cluster of 50,000 Services, the controller manager took a host core for 15 minutes
	// and more, which the guest it serves then lacked.
	NoControllerManager bool
	// EtcdSeed, when set, is an etcd data dir the control plane starts from, copied (the
	// benchmark's preloaded clusters, written once): its objects are there from the start.
	EtcdSeed string
	// Kubeconfig, when set, is an admin kubeconfig of a control plane running elsewhere
	// (one started with ControlPlaneOnly): Start starts none, waits until that API server
	// is ready, and brings up the node against it.
	Kubeconfig string
}

// Component is an extra process the bed runs on the node, such as kubevs-proxier.
type Component struct {
	// Name names it and its log file.
	Name string
	// Binary is the path of the executable.
	Binary string
	// Args returns its arguments; it may use the started bed (Kubeconfig, Node).
	Args func(b *Bed) []string
	// Ready, if set, is polled until it returns nil.
	Ready func(ctx context.Context, b *Bed) error
}

// Bed is a running test bed.
type Bed struct {
	// Dir is the work dir, LogDir the log dir.
	Dir, LogDir string
	// Kubeconfig is the path of an admin kubeconfig (mode 0600).
	Kubeconfig string
	// RESTConfig and Client talk to the API server as admin.
	RESTConfig *rest.Config
	Client     kubernetes.Interface
	// Node is the Node object as created.
	Node *corev1.Node
	// Network is the node's CNI network.
	Network *Network
	// Outside is the outside host's network namespace.
	Outside *netns.NS

	cfg     Config
	prefix  string
	tempDir bool
	pki     *pki
	procs   []*Process
}

// Start brings the bed up; see the package comment. On error everything already started is
// stopped again.
func Start(ctx context.Context, cfg Config) (_ *Bed, err error) {
	if cfg.NodeName == "" {
		cfg.NodeName = "kubevs-node"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 3 * time.Minute
	}
	cfg.Network.setDefaults()
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	b := &Bed{cfg: cfg, prefix: "kvs" + hex.EncodeToString(id), Dir: cfg.Dir, LogDir: cfg.LogDir}
	if b.Dir == "" {
		if b.Dir, err = os.MkdirTemp("", "kubevs-bed-"); err != nil {
			return nil, fmt.Errorf("create bed dir: %w", err)
		}
		b.tempDir = true
	}
	if b.LogDir == "" {
		b.LogDir = filepath.Join(b.Dir, "logs")
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Close())
		}
	}()
	if err := os.MkdirAll(b.LogDir, 0o755); err != nil {
		return b, fmt.Errorf("create log dir: %w", err)
	}
	logger := klog.FromContext(ctx)
	start := time.Now()
	if err := loopbackUp(); err != nil {
		return b, err
	}
	if cfg.Kubeconfig != "" {
		if err := b.useControlPlane(ctx, cfg.Kubeconfig); err != nil {
			return b, err
		}
	} else {
		if err := b.startControlPlane(ctx); err != nil {
			return b, err
		}
		b.RESTConfig = restConfig(b.pki)
	}
	logger.V(1).Info("Control plane ready", "elapsed", time.Since(start), "logs", b.LogDir)
	if b.Client, err = kubernetes.NewForConfig(b.RESTConfig); err != nil {
		return b, fmt.Errorf("create client: %w", err)
	}
	if cfg.ControlPlaneOnly {
		return b, nil
	}
	if !cfg.KubeletNode {
		if err := b.createNode(ctx); err != nil {
			return b, err
		}
		if err := b.setupNetwork(); err != nil {
			return b, err
		}
	}
	for _, c := range cfg.Components {
		if err := b.startComponent(ctx, c); err != nil {
			return b, err
		}
	}
	logger.V(1).Info("Bed ready", "elapsed", time.Since(start))
	return b, nil
}

func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

func (b *Bed) startComponent(ctx context.Context, c Component) error {
	var args []string
	if c.Args != nil {
		args = c.Args(b)
	}
	p, err := b.start(ctx, c.Name, c.Binary, args...)
	if err != nil {
		return err
	}
	if c.Ready == nil {
		return nil
	}
	return poll(ctx, c.Name+" ready", b.cfg.StartTimeout, 250*time.Millisecond, p, func(ctx context.Context) error {
		return c.Ready(ctx, b)
	})
}

// Close stops every component, removes the node network and the outside host, and removes
// Dir if Start created it. Logs in a caller-given LogDir are kept.
func (b *Bed) Close() error {
	errs := []error{b.stopAll()}
	if !b.cfg.ControlPlaneOnly {
		// Links are deleted by name: a bed that made none must not touch any.
		errs = append(errs, b.teardownNetwork())
	}
	if b.tempDir {
		if err := os.RemoveAll(b.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove bed dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// NodeName is the name of the bed's Node.
func (b *Bed) NodeName() string { return b.cfg.NodeName }

// NodeIP is the node's IPv4 InternalIP, on the link to the outside host.
func (b *Bed) NodeIP() net.IP { return mustAddr(b.cfg.Network.NodeAddr) }

// NodeIPv6 is the node's IPv6 InternalIP on that link; nil on an IPv4-only bed.
func (b *Bed) NodeIPv6() net.IP { return mustAddr(b.cfg.Network.NodeAddrV6) }

// NodeIPs are the node's InternalIPs, IPv4 first.
func (b *Bed) NodeIPs() []net.IP { return nonNil(b.NodeIP(), b.NodeIPv6()) }

// OutsideIP is the outside host's IPv4 address.
func (b *Bed) OutsideIP() net.IP { return mustAddr(b.cfg.Network.OutsideAddr) }

// OutsideIPv6 is the outside host's IPv6 address; nil on an IPv4-only bed.
func (b *Bed) OutsideIPv6() net.IP { return mustAddr(b.cfg.Network.OutsideAddrV6) }

// PodCIDR is the node's IPv4 pod range.
func (b *Bed) PodCIDR() string { return b.cfg.Network.PodCIDR }

// PodCIDRv6 is the node's IPv6 pod range; empty on an IPv4-only bed.
func (b *Bed) PodCIDRv6() string { return b.cfg.Network.PodCIDRv6 }

// PodCIDRs are the node's pod ranges as its spec.podCIDRs lists them, IPv4 first.
func (b *Bed) PodCIDRs() []string { return b.cfg.Network.PodCIDRs() }

// ServiceCIDRs are the API server's service ranges, IPv4 first.
func (b *Bed) ServiceCIDRs() []string { return b.cfg.Network.serviceCIDRs() }

// DualStack reports whether the node has both families (it is not IPv4Only).
func (b *Bed) DualStack() bool { return b.cfg.Network.PodCIDRv6 != "" }

// NetnsPrefix is a prefix unique to this bed for naming network namespaces, so beds of
// different test runs on one host never collide.
func (b *Bed) NetnsPrefix() string { return b.prefix }

// Token is the admin bearer token.
func (b *Bed) Token() string { return b.RESTConfig.BearerToken }

// Timings says how long each component took to become ready, in start order, for logs:
// "etcd 1.1s, kube-apiserver 9.8s, ...".
func (b *Bed) Timings() string {
	parts := make([]string, 0, len(b.procs))
	for _, p := range b.procs {
		parts = append(parts, fmt.Sprintf("%s %s", p.Name, p.ReadyAfter.Round(100*time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// LogFiles lists the components' log files, for a failing test to point at.
func (b *Bed) LogFiles() []string {
	var out []string
	for _, p := range b.procs {
		out = append(out, p.LogPath)
	}
	return out
}

func nonNil(ips ...net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if ip != nil {
			out = append(out, ip)
		}
	}
	return out
}

// mustAddr is the address of cidr, nil for "".
func mustAddr(cidr string) net.IP {
	if cidr == "" {
		return nil
	}
	ip, _, err := net.ParseCIDR(cidr)
	if err != nil {
		panic(fmt.Sprintf("bed: invalid address %q (Start validates it): %v", cidr, err))
	}
	return ip
}
