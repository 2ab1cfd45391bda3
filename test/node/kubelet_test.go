//go:build nodee2e

package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/test/bed"
)

// The node: its name, and its address on a dummy link (the guest has only loopback). In the
// two-node scenario the same name and address are the first node's, on the guests' link.
const (
	nodeName = "kubevs-node"
	nodeLink = "node0"
	nodeAddr = "192.168.77.1/24"
	nodeIP   = "192.168.77.1"
)

// nodeSpec names a node and its InternalIP.
type nodeSpec struct{ name, ip string }

// kubeletConfig is a static KubeletConfiguration: x509 client authentication against the bed's
// CA, cgroupfs (containerd says the same through RuntimeConfig), no swap check, no disk
// eviction (the node's disks are the guest's tmpfs and 9p), and the cluster DNS of dns_test.go
// (which answers only where the bed runs it: node-e2e.sh and upstream-e2e.sh).
func kubeletConfig(caFile, ip string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %s
authorization:
  mode: AlwaysAllow
failSwapOn: false
evictionHard:
  nodefs.available: "0%%"
  nodefs.inodesFree: "0%%"
  imagefs.available: "0%%"
imageGCHighThresholdPercent: 100
serializeImagePulls: false
clusterDNS: [%s]
clusterDomain: %s
`, containerdSocket, ip, caFile, kubeDNSIP, clusterDomain)
}

// addNodeLink gives the guest the node's address on a dummy link.
func addNodeLink(t *testing.T) {
	t.Helper()
	l := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: nodeLink}}
	if err := netlink.LinkAdd(l); err != nil {
		t.Fatalf("add link %s: %v", nodeLink, err)
	}
	addr, err := netlink.ParseAddr(nodeAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(l, addr); err != nil {
		t.Fatalf("address %s on %s: %v", nodeAddr, nodeLink, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatalf("set %s up: %v", nodeLink, err)
	}
}

// startKubelet starts the kubelet with a system:node client certificate and waits for its
// healthz.
func startKubelet(ctx context.Context, t *testing.T, e env, b *bed.Bed) *bed.Process {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubelet.kubeconfig")
	if err := b.WriteNodeKubeconfig(kubeconfig, nodeName); err != nil {
		t.Fatal(err)
	}
	return startKubeletAs(ctx, t, e, nodeSpec{nodeName, nodeIP}, kubeconfig, b.CACertFile())
}

// startKubeletAs starts the kubelet of node n with its kubeconfig and the CA that signs
// client certificates, and waits for its healthz.
func startKubeletAs(ctx context.Context, t *testing.T, e env, n nodeSpec, kubeconfig, caFile string) *bed.Process {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "kubelet.yaml")
	if err := os.WriteFile(cfg, []byte(kubeletConfig(caFile, n.ip)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := bed.StartProcess(ctx, e.logDir, "kubelet", find(t, e.nodeBin, "kubelet"),
		"--config="+cfg, "--kubeconfig="+kubeconfig,
		"--hostname-override="+n.name, "--node-ip="+n.ip,
		"--root-dir=/var/lib/kubelet", "--v=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(20 * time.Second) })
	client := &http.Client{Timeout: 5 * time.Second}
	if err := pollFor(ctx, 10*time.Minute, p, func() error {
		resp, err := client.Get("http://127.0.0.1:10248/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("kubelet healthz: %s", resp.Status)
		}
		return nil
	}); err != nil {
		t.Fatalf("kubelet: %v", err)
	}
	return p
}

// schedulerComponent is kube-scheduler as a bed component, with the admin kubeconfig.
func schedulerComponent(t *testing.T, e env) bed.Component {
	return bed.Component{
		Name:   "kube-scheduler",
		Binary: find(t, e.nodeBin, "kube-scheduler"),
		Args: func(b *bed.Bed) []string {
			return []string{"--kubeconfig=" + b.Kubeconfig,
				"--authentication-kubeconfig=" + b.Kubeconfig, "--authorization-kubeconfig=" + b.Kubeconfig,
				"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10259"}
		},
		Ready: func(ctx context.Context, _ *bed.Bed) error {
			insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // its self-signed serving certificate
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:10259/healthz", nil)
			if err != nil {
				return err
			}
			resp, err := insecure.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("kube-scheduler healthz: %s", resp.Status)
			}
			return nil
		},
	}
}
