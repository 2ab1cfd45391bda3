package bed

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func TestWriteNodeKubeconfig(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := &Bed{pki: p}
	path := filepath.Join(dir, "kubelet", "kubeconfig")
	if err := b.WriteNodeKubeconfig(path, "kubevs-node"); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	if cfg.Host != APIServerURL || string(cfg.CAData) != string(p.caPEM) || cfg.BearerToken != "" {
		t.Errorf("host %q, CA from the bed: %v, token %q", cfg.Host, string(cfg.CAData) == string(p.caPEM), cfg.BearerToken)
	}
	block, _ := pem.Decode(cfg.CertData)
	if block == nil {
		t.Fatalf("no client certificate in %s", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:node:kubevs-node" || !slices.Equal(cert.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject %v, want system:node:kubevs-node in system:nodes", cert.Subject)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify against the bed's CA for client auth: %v", err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v (err %v), want 0600", st.Mode().Perm(), err)
	}
}

// TestKubeletNodeControllersLiftTheNotReadyTaint: the API server admits every new Node tainted
// node.kubernetes.io/not-ready:NoSchedule and only the node lifecycle controller lifts it; a bed
// without it ran the kubevs DaemonSet pod (it tolerates the taint) and left every other pod
// Pending, unbound. Taint-based eviction stays off, and a late heartbeat under TCG has minutes.
func TestKubeletNodeControllersLiftTheNotReadyTaint(t *testing.T) {
	p, err := newPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]string{}
	for _, a := range kubeletNodeControllerArgs(NetworkConfig{}, p) {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		flags[k] = v
	}
	controllers := strings.Split(flags["controllers"], ",")
	for _, want := range []string{"nodelifecycle", "deployment", "replicaset", "daemonset", "nodeipam", "serviceaccount"} {
		if !slices.Contains(controllers, want) {
			t.Errorf("--controllers=%s lacks %s", flags["controllers"], want)
		}
	}
	for _, never := range []string{"taint-eviction-controller", "tainteviction", "*"} {
		if slices.Contains(controllers, never) {
			t.Errorf("--controllers=%s runs %s: a node NotReady under TCG would have its pods evicted", flags["controllers"], never)
		}
	}
	for _, f := range []string{"node-monitor-grace-period", "node-startup-grace-period"} {
		d, err := time.ParseDuration(flags[f])
		if err != nil || d < 2*time.Minute {
			t.Errorf("--%s=%q, want at least 2m (heartbeats are late under TCG)", f, flags[f])
		}
	}
}

// kubectl exec on the real node: the API server dials the kubelet at the node's InternalIP
// (the guest resolves no hostname) with a client certificate the kubelet's clientCAFile (the
// bed's CA) verifies.
func TestAPIServerReachesTheKubelet(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	args, err := kubeletClientArgs(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		flags[k] = v
	}
	if types := strings.Split(flags["kubelet-preferred-address-types"], ","); types[0] != "InternalIP" {
		t.Errorf("--kubelet-preferred-address-types=%s, want InternalIP first", flags["kubelet-preferred-address-types"])
	}
	certPEM, err := os.ReadFile(flags["kubelet-client-certificate"])
	if err != nil {
		t.Fatalf("--kubelet-client-certificate: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(flags["kubelet-client-certificate"], flags["kubelet-client-key"]); err != nil {
		t.Errorf("--kubelet-client-certificate and --kubelet-client-key: %v", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("--kubelet-client-certificate holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(p.CACert)
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CA %s: %v", p.CACert, err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the kubelet (clientCAFile %s) would refuse the API server's client certificate: %v", p.CACert, err)
	}
}

// TestWriteRemoteKubeconfig: a second node's kube-proxy gets the admin's token and the bed's
// CA with the API server at the first node's link address, mode 0600.
func TestWriteRemoteKubeconfig(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := &Bed{pki: p}
	const server = "https://192.0.2.1:6443"
	path := filepath.Join(dir, "kubeconfig")
	if err := b.WriteRemoteKubeconfig(path, server); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	if cfg.Host != server || string(cfg.CAData) != string(p.caPEM) || cfg.BearerToken != p.Token {
		t.Errorf("host %q (want %s), CA from the bed: %v, admin token: %v", cfg.Host, server, string(cfg.CAData) == string(p.caPEM), cfg.BearerToken == p.Token)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v (err %v), want 0600", st.Mode().Perm(), err)
	}
}
