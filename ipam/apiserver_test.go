package ipam

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/test/bed"
)

// selfSigned returns a PEM certificate and key.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// view is what a test compares of an apiClient.
type view struct {
	Server, Token, AsUser string
	AsGroups              []string
	CA                    bool
	Certs                 int
	Insecure              bool
}

func TestLoadKubeconfig(t *testing.T) {
	cert, key := selfSigned(t)
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	dir := t.TempDir()
	for name, data := range map[string]string{"ca.crt": string(cert), "token": "file-token\n", "client.crt": string(cert), "client.key": string(key)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := func(cluster, user string, currentContext string) string {
		return "apiVersion: v1\nkind: Config\ncurrent-context: " + currentContext + "\n" +
			"clusters:\n- name: c\n  cluster:\n" + cluster +
			"users:\n- name: u\n  user:\n" + user +
			"contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n"
	}
	tests := []struct {
		name, kubeconfig string
		want             view
		wantErr          string
	}{
		{
			name:       "token and CA data, as kubevs-install writes",
			kubeconfig: doc("    server: https://192.0.2.10:6443\n    certificate-authority-data: "+b64(cert)+"\n", "    token: abc\n", "ctx"),
			want:       view{Server: "https://192.0.2.10:6443", Token: "abc", CA: true},
		},
		{
			name:       "relative files, single context without current-context",
			kubeconfig: doc("    server: https://api:6443/\n    certificate-authority: ca.crt\n", "    tokenFile: token\n    client-certificate: client.crt\n    client-key: client.key\n", `""`),
			want:       view{Server: "https://api:6443", Token: "file-token", CA: true, Certs: 1},
		},
		{
			name:       "impersonation",
			kubeconfig: doc("    server: https://api:6443\n    insecure-skip-tls-verify: true\n", "    token: t\n    as: system:serviceaccount:kubevs-system:kubevs\n    as-groups: [system:serviceaccounts]\n", "ctx"),
			want: view{Server: "https://api:6443", Token: "t", AsUser: "system:serviceaccount:kubevs-system:kubevs",
				AsGroups: []string{"system:serviceaccounts"}, Insecure: true},
		},
		{name: "no such context", kubeconfig: doc("    server: https://api:6443\n", "    token: t\n", "other"), wantErr: `no context "other"`},
		{name: "exec plugin", kubeconfig: doc("    server: https://api:6443\n", "    exec:\n      command: aws\n", "ctx"), wantErr: "not supported"},
		{name: "bad CA", kubeconfig: doc("    server: https://api:6443\n    certificate-authority-data: "+b64([]byte("junk"))+"\n", "    token: t\n", "ctx"), wantErr: "no PEM certificate"},
		{name: "bad server", kubeconfig: doc("    server: api:6443\n", "    token: t\n", "ctx"), wantErr: "bad server"},
		{name: "token over http", kubeconfig: doc("    server: http://api:8080\n", "    token: t\n", "ctx"),
			wantErr: `clusters[c].cluster.server "http://api:8080" is http://: refusing to send the bearer token of user u`},
		{name: "token file over http", kubeconfig: doc("    server: http://api:8080\n", "    tokenFile: token\n", "ctx"), wantErr: "refusing to send the bearer token"},
		{name: "http without a token", kubeconfig: doc("    server: http://api:8080\n", "", "ctx"), want: view{Server: "http://api:8080"}},
		{name: "missing token file", kubeconfig: doc("    server: https://api:6443\n", "    tokenFile: absent\n", "ctx"), wantErr: "token file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "kubeconfig")
			if err := os.WriteFile(p, []byte(tt.kubeconfig), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := loadKubeconfig(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc := c.http.Transport.(*http.Transport).TLSClientConfig
			got := view{Server: c.server, Token: c.token, AsUser: c.asUser, AsGroups: c.asGroups,
				CA: tc.RootCAs != nil, Certs: len(tc.Certificates), Insecure: tc.InsecureSkipVerify}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Environment of the re-executed test (see TestPodCIDRsFromRealAPIServer).
const realAPIChildEnv = "KUBEVS_IPAM_REAL_API_CHILD"

// TestPodCIDRsFromRealAPIServer reads a Node from a real kube-apiserver (the test bed's, built
// from Go modules by test/scripts/control-plane.sh). The bed creates network links, so the test
// re-executes itself in a fresh network namespace (unshare --net) and runs there.
func TestPodCIDRsFromRealAPIServer(t *testing.T) {
	if os.Getenv(realAPIChildEnv) == "" {
		testenv.RequireRoot(t)
		if testing.Short() {
			t.Skip("starts etcd and kube-apiserver")
		}
		bins := os.Getenv("KUBEVS_CONTROL_PLANE_BIN")
		if bins == "" {
			out, err := exec.Command("bash", "../test/scripts/control-plane.sh", "--path").Output()
			if err != nil {
				t.Fatalf("control-plane.sh --path: %v", err)
			}
			bins = strings.TrimSpace(string(out))
		}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("unshare", "--net", "--", self, "-test.run=^TestPodCIDRsFromRealAPIServer$", "-test.v")
		cmd.Env = append(os.Environ(), realAPIChildEnv+"=1", "KUBEVS_CONTROL_PLANE_BIN="+bins)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestPodCIDRsFromRealAPIServer") {
			t.Fatalf("in a fresh network namespace: %v\n%s", err, out)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	b, err := bed.Start(ctx, bed.Config{
		ControlPlaneBin: filepath.SplitList(os.Getenv("KUBEVS_CONTROL_PLANE_BIN")),
		NodeName:        "ipam-node",
		Network:         bed.NetworkConfig{PodCIDR: "10.244.9.0/24", PodCIDRv6: "fd00:249::/64"},
	})
	if err != nil {
		t.Fatalf("start the bed: %v", err)
	}
	defer b.Close()

	got, err := fromAPIServer(ctx, b.Kubeconfig, "ipam-node")
	if err != nil {
		t.Fatalf("fromAPIServer: %v", err)
	}
	// A dual-stack Node: both ranges, in the Node's order (IPv4 first).
	want := []netip.Prefix{netip.MustParsePrefix("10.244.9.0/24"), netip.MustParsePrefix("fd00:249::/64")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("podCIDRs (-want +got):\n%s", diff)
	}
	if _, err := fromAPIServer(ctx, b.Kubeconfig, "no-such-node"); !errors.Is(err, errNodeNotFound) {
		t.Errorf("absent node: err = %v, want errNodeNotFound", err)
	}
	// Impersonating a user without RBAC rights: the API server's refusal is reported.
	weak := filepath.Join(t.TempDir(), "weak.kubeconfig")
	if err := b.WriteKubeconfigAs(weak, "nobody"); err != nil {
		t.Fatal(err)
	}
	if _, err := fromAPIServer(ctx, weak, "ipam-node"); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("as a user without rights: err = %v, want forbidden", err)
	}
}
