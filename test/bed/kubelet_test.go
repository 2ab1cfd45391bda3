package bed

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"

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
