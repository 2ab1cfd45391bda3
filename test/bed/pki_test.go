package bed

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func readPEM(t *testing.T, path string) *pem.Block {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	return b
}

func TestPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(readPEM(t, p.CACert).Bytes)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := x509.ParseCertificate(readPEM(t, p.ServerCert).Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, host := range []string{"127.0.0.1", "localhost", "10.96.0.1", "kubernetes.default.svc"} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("serving certificate does not verify for %s: %v", host, err)
		}
	}
	if _, err := x509.ParseECPrivateKey(readPEM(t, p.ServerKey).Bytes); err != nil {
		t.Errorf("serving key: %v", err)
	}
	if _, err := x509.ParsePKCS1PrivateKey(readPEM(t, p.SAKey).Bytes); err != nil {
		t.Errorf("service-account key is not an RSA key: %v", err)
	}
	tokens, err := os.ReadFile(p.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := p.Token + "," + adminUser + "," + adminUser + `,"system:masters"`; strings.TrimSpace(string(tokens)) != want {
		t.Errorf("token file %q, want %q", tokens, want)
	}
	for _, f := range []string{p.ServerKey, p.SAKey, p.TokenFile} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (err %v), want 0600", f, st.Mode().Perm(), err)
		}
	}
}

func TestKubeconfig(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := dir + "/kubeconfig"
	if err := writeKubeconfig(path, p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig mode %v (err %v), want 0600", st.Mode().Perm(), err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
				CAData []byte `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User struct {
				Token string `json:"token"`
			} `json:"user"`
		} `json:"users"`
		CurrentContext string `json:"current-context"`
	}
	if err := yaml.Unmarshal(data, &kc); err != nil {
		t.Fatalf("parse kubeconfig: %v", err)
	}
	if len(kc.Clusters) != 1 || kc.Clusters[0].Cluster.Server != APIServerURL || string(kc.Clusters[0].Cluster.CAData) != string(p.caPEM) {
		t.Errorf("kubeconfig cluster = %+v, want server %s with the bed's CA", kc.Clusters, APIServerURL)
	}
	if len(kc.Users) != 1 || kc.Users[0].User.Token != p.Token || kc.CurrentContext != "bed" {
		t.Errorf("kubeconfig users %+v, current context %q", kc.Users, kc.CurrentContext)
	}
}

func TestWriteKubeconfigAs(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := &Bed{pki: p}
	path := dir + "/proxier.kubeconfig"
	if err := b.WriteKubeconfigAs(path, "system:serviceaccount:kube-system:kubevs-proxier", "system:serviceaccounts"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kc struct {
		Users []struct {
			User struct {
				Token    string   `json:"token"`
				As       string   `json:"as"`
				AsGroups []string `json:"as-groups"`
			} `json:"user"`
		} `json:"users"`
	}
	if err := yaml.Unmarshal(data, &kc); err != nil {
		t.Fatalf("parse kubeconfig: %v\n%s", err, data)
	}
	if len(kc.Users) != 1 {
		t.Fatalf("users = %+v", kc.Users)
	}
	u := kc.Users[0].User
	if u.Token != p.Token || u.As != "system:serviceaccount:kube-system:kubevs-proxier" || len(u.AsGroups) != 1 || u.AsGroups[0] != "system:serviceaccounts" {
		t.Errorf("user = %+v, want the admin token impersonating the proxier", u)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v (err %v), want 0600", st.Mode().Perm(), err)
	}
}

// TestPKIServesOtherNodes: with APIServerIPs the API server's certificate verifies for those
// addresses (a second node's kubelet dials the first's link address), and still for loopback.
func TestPKIServesOtherNodes(t *testing.T) {
	p, err := newPKI(t.TempDir(), net.IPv4(192, 168, 77, 1))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p.ServerCert)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("no PEM in %s", p.ServerCert)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"192.168.77.1", "127.0.0.1"} {
		if err := cert.VerifyHostname(host); err != nil {
			t.Errorf("serving certificate for %s: %v", host, err)
		}
	}
	if got := apiserverBind([]net.IP{net.IPv4(192, 168, 77, 1)}); got != "0.0.0.0" {
		t.Errorf("bind address with other nodes = %s, want 0.0.0.0", got)
	}
	if got := apiserverBind(nil); got != "127.0.0.1" {
		t.Errorf("bind address alone = %s, want 127.0.0.1", got)
	}
}
