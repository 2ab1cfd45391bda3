package bed

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ClusterCIDR is the pod range of a bed whose node is a real kubelet's (Config.KubeletNode):
// the controller manager's node IPAM gives each Node a /24 of it (kubeadm's
// --pod-network-cidr, and the clusterCIDRs of install/manifests/kubevs.yaml).
const ClusterCIDR = "10.244.0.0/16"

// kubeletNodeControllerArgs are the controller manager's flags for a bed whose node is a real
// kubelet's: besides the EndpointSlice controllers, what a kubelet's workloads need (service
// accounts and the kube-root-ca.crt ConfigMap for their projected tokens, Deployments,
// ReplicaSets and DaemonSets), node IPAM (spec.podCIDRs, which kubevs-ipam reads) and node
// lifecycle.
//
// Node lifecycle is not optional: the API server's TaintNodesByCondition admission gives every
// new Node the node.kubernetes.io/not-ready:NoSchedule taint, and only that controller lifts
// it once the Ready condition is True. Without it DaemonSet pods (which tolerate the taint) run and every
// other pod stays Pending, unbound, for ever (seen: the test Deployment's pods). Its grace
// periods are long because the guest runs under TCG on a loaded host: a late heartbeat must not
// mark the node Unknown and its pods not ready. Taint-based eviction stays off (not listed).
func kubeletNodeControllerArgs(n NetworkConfig, p *pki) []string {
	return []string{
		"--controllers=endpointslice,endpointslicemirroring,serviceaccount,root-ca-cert-publisher," +
			"deployment,replicaset,daemonset,nodeipam,nodelifecycle",
		"--root-ca-file=" + p.CACert,
		"--service-account-private-key-file=" + p.SAKey,
		"--allocate-node-cidrs=true", "--cluster-cidr=" + ClusterCIDR, "--node-cidr-mask-size=24",
		"--node-monitor-grace-period=5m", "--node-startup-grace-period=10m",
	}
}

// kubeletClientArgs are the API server's flags for a bed whose node is a real kubelet's, so that
// pods/exec, pods/log and port-forward reach the kubelet (kubectl exec, which upstream's e2e
// specs use everywhere): a client certificate signed by the bed's CA, which the kubelet's x509
// authentication trusts (its clientCAFile), written into dir; and the node's InternalIP before
// its hostname, which the guest cannot resolve (seen: "dial tcp: lookup kubevs-node on
// 10.255.255.53:53: network is unreachable").
func kubeletClientArgs(dir string, p *pki) ([]string, error) {
	cert, key, err := p.clientCert("kube-apiserver-kubelet-client", "system:masters")
	if err != nil {
		return nil, err
	}
	certFile, keyFile := filepath.Join(dir, "apiserver-kubelet-client.crt"), filepath.Join(dir, "apiserver-kubelet-client.key")
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		return nil, fmt.Errorf("write the API server's kubelet client certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return nil, fmt.Errorf("write the API server's kubelet client key: %w", err)
	}
	return []string{
		"--kubelet-client-certificate=" + certFile, "--kubelet-client-key=" + keyFile,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
	}, nil
}

// CACertFile is the CA that signed the API server's certificate and the bed's client
// certificates (a kubelet's --client-ca-file, a kubeconfig's certificate authority).
func (b *Bed) CACertFile() string { return b.pki.CACert }

// WriteNodeKubeconfig writes a kubeconfig (mode 0600) for the kubelet of node: a client
// certificate for system:node:<node> in group system:nodes, as kubeadm gives a joined node,
// so the Node authorizer and NodeRestriction judge it as a real node's.
func (b *Bed) WriteNodeKubeconfig(path, node string) error {
	return b.WriteRemoteNodeKubeconfig(path, node, APIServerURL)
}

// WriteRemoteNodeKubeconfig is WriteNodeKubeconfig for a node on another machine, which
// reaches the API server at server (https://IP:6443, IP one of Config.APIServerIPs).
func (b *Bed) WriteRemoteNodeKubeconfig(path, node, server string) error {
	cert, key, err := b.pki.clientCert("system:node:"+node, "system:nodes")
	if err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString
	kc := strings.Join([]string{
		"apiVersion: v1",
		"kind: Config",
		"clusters:",
		"- name: bed",
		"  cluster:",
		"    server: " + server,
		"    certificate-authority-data: " + enc(b.pki.caPEM),
		"users:",
		"- name: " + node,
		"  user:",
		"    client-certificate-data: " + enc(cert),
		"    client-key-data: " + enc(key),
		"contexts:",
		"- name: bed",
		"  context:",
		"    cluster: bed",
		"    user: " + node,
		"current-context: bed",
		"",
	}, "\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write kubeconfig of node %s: %w", node, err)
	}
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig of node %s: %w", node, err)
	}
	return nil
}
