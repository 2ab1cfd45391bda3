//go:build nodee2e

package node

// The node's cluster DNS, as a cluster has it: a DNS server (cmd/clusterdns) on the node's
// address, the Service kube-system/kube-dns without a selector at ClusterIP kubeDNSIP, and an
// EndpointSlice naming the node's address, so that pods reach the server through kubevs; the
// kubelet gives pods kubeDNSIP and the domain (kubeletConfig).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubevs/kubevs/test/bed"
)

// kubeDNSIP is the kube-dns Service's ClusterIP (in bed.ServiceCIDR), clusterDomain the
// cluster domain.
const (
	kubeDNSIP     = "10.96.0.10"
	clusterDomain = "cluster.local"
)

// dnsComponent is cmd/clusterdns as a bed component on the node's address, port 53, with the
// admin kubeconfig; ready when it answers for the API server's Service.
func dnsComponent(binary string) bed.Component {
	return bed.Component{
		Name:   "clusterdns",
		Binary: binary,
		Args: func(b *bed.Bed) []string {
			return []string{"--kubeconfig=" + b.Kubeconfig, "--listen=" + net.JoinHostPort(nodeIP, "53"), "--domain=" + clusterDomain, "--v=2"}
		},
		Ready: func(ctx context.Context, _ *bed.Bed) error {
			m := new(dns.Msg)
			m.SetQuestion("kubernetes.default.svc."+clusterDomain+".", dns.TypeA)
			r, _, err := (&dns.Client{Timeout: 5 * time.Second}).ExchangeContext(ctx, m, net.JoinHostPort(nodeIP, "53"))
			if err != nil {
				return err
			}
			if len(r.Answer) == 0 {
				return fmt.Errorf("kubernetes.default: %s without an answer", dns.RcodeToString[r.Rcode])
			}
			return nil
		},
	}
}

// createKubeDNS creates kube-system/kube-dns (53/UDP, 53/TCP) without a selector at kubeDNSIP,
// and its EndpointSlice naming the node's address.
func createKubeDNS(ctx context.Context, t *testing.T, c kubernetes.Interface) {
	t.Helper()
	labels := map[string]string{"k8s-app": "kube-dns"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system", Labels: labels},
		Spec: corev1.ServiceSpec{ClusterIP: kubeDNSIP, Ports: []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
		}},
	}
	create(ctx, t, "Service kube-system/kube-dns", func() error {
		_, err := c.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{})
		return err
	})
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns-node", Namespace: "kube-system", Labels: map[string]string{
			discoveryv1.LabelServiceName: "kube-dns", discoveryv1.LabelManagedBy: "kubevs-node-bed"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Port: ptr.To[int32](53), Protocol: ptr.To(corev1.ProtocolUDP)},
			{Name: ptr.To("dns-tcp"), Port: ptr.To[int32](53), Protocol: ptr.To(corev1.ProtocolTCP)},
		},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{nodeIP}, NodeName: ptr.To(nodeName),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}}},
	}
	create(ctx, t, "EndpointSlice kube-system/kube-dns-node", func() error {
		_, err := c.DiscoveryV1().EndpointSlices("kube-system").Create(ctx, es, metav1.CreateOptions{})
		return err
	})
}

// errNoDNS is the reason a test that needs the cluster DNS cannot run.
var errNoDNS = errors.New("KUBEVS_NODE_DNS is not set: run this test with its script (test/scripts/node-e2e.sh), which builds cmd/clusterdns")
