package status

// A real etcd and kube-apiserver (built by test/scripts/control-plane.sh) on loopback ports,
// to check that the light REST Source lists what client-go's clientset lists. Skipped when
// the binaries are not built, like the VM tests on the host.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/desired"
)

// controlPlaneBinary finds name in $KUBEVS_CONTROL_PLANE_BIN or control-plane.sh's cache.
func controlPlaneBinary(t testing.TB, name string) string {
	t.Helper()
	dirs := filepath.SplitList(os.Getenv("KUBEVS_CONTROL_PLANE_BIN"))
	if home, err := os.UserHomeDir(); err == nil {
		cache := os.Getenv("KUBEVS_CACHE")
		if cache == "" {
			cache = filepath.Join(home, ".cache", "kubevs")
		}
		found, _ := filepath.Glob(filepath.Join(cache, "bin", "*", name))
		for _, f := range found {
			dirs = append(dirs, filepath.Dir(f))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Skipf("%s not built: run test/scripts/control-plane.sh (or set KUBEVS_CONTROL_PLANE_BIN)", name)
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProcess runs bin with args until the test ends; its output goes to dir/name.log.
func startProcess(t testing.TB, dir, name, bin string, args ...string) *exec.Cmd {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
		if t.Failed() {
			if out, err := os.ReadFile(log.Name()); err == nil {
				t.Logf("%s log (tail):\n%s", name, tail(string(out), 3000))
			}
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startAPIServer starts etcd and kube-apiserver and returns an admin configuration.
func startAPIServer(t testing.TB) *rest.Config {
	t.Helper()
	etcdBin, apiBin := controlPlaneBinary(t, "etcd"), controlPlaneBinary(t, "kube-apiserver")
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	must(t, err)
	saKey, saPub, tokens := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub"), filepath.Join(dir, "tokens.csv")
	must(t, os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600))
	must(t, os.WriteFile(saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600))
	const token = "kubevs-status-test-token"
	must(t, os.WriteFile(tokens, []byte(token+`,admin,admin,"system:masters"`+"\n"), 0o600))

	client, peer, secure := freePort(t), freePort(t), freePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	startProcess(t, dir, "etcd", etcdBin, "--name=status", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=status="+peerURL, "--unsafe-no-fsync", "--log-level=warn")
	api := startProcess(t, dir, "kube-apiserver", apiBin,
		"--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", secure), "--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+tokens, "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+saPub,
		"--service-account-signing-key-file="+saKey, "--service-cluster-ip-range=10.96.0.0/16",
		"--endpoint-reconciler-type=none", "--enable-priority-and-fairness=false",
		"--disable-admission-plugins=ServiceAccount", "--profiling=false")

	host := fmt.Sprintf("https://127.0.0.1:%d", secure)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		req, _ := http.NewRequest(http.MethodGet, host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if api.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready at %s: %v", host, err)
		}
		time.Sleep(250 * time.Millisecond) // poll interval
	}
	return &rest.Config{Host: host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

func TestSourceAgainstARealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	if testenv.InVM() {
		t.Skip("runs on the host: kube-apiserver takes about 3 minutes to start under TCG")
	}
	rc := startAPIServer(t)
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(rc)
	must(t, err)
	// Seven Services and their slices, listed two per page.
	var objs []string
	for i := range 7 {
		svc := service(fmt.Sprintf("ns%d/svc%d", i%2, i), fmt.Sprintf("10.96.1.%d", i+1), "TCP:80", "UDP:53")
		if i == 3 {
			svc.Labels = map[string]string{desired.ServiceProxyNameLabel: "other"}
		}
		for _, ns := range []string{"ns0", "ns1"} {
			_, _ = cs.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		}
		_, err := cs.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{})
		must(t, err)
		sl := slice(svc, svc.Name+"-a", fmt.Sprintf("10.244.1.%d", i+10), fmt.Sprintf("10.244.2.%d", i+10))
		_, err = cs.DiscoveryV1().EndpointSlices(svc.Namespace).Create(ctx, sl, metav1.CreateOptions{})
		must(t, err)
		objs = append(objs, svc.Namespace+"/"+svc.Name)
	}
	defer func(n int) { pageSize = n }(pageSize)
	pageSize = 2

	src, err := NewSource(rc)
	must(t, err)
	n, err := src.Node(ctx, testNode)
	if n != nil || err != nil {
		t.Errorf("absent Node: %v, %v; want nil, nil", n, err)
	}
	_, err = cs.CoreV1().Nodes().Create(ctx, node("10.244.0.0/24"), metav1.CreateOptions{})
	must(t, err)

	show := func(ws []Want) string {
		var b strings.Builder
		for _, w := range ws {
			b.WriteString(w.Service.String() + " " + w.Type + "\n" + w.State.String())
		}
		return b.String()
	}
	got, err := ListDesired(ctx, src, testNode, config.New(), nil, nil)
	must(t, err)
	want, err := ListDesired(ctx, clientsetSource{cs}, testNode, config.New(), nil, nil)
	must(t, err)
	// default/kubernetes and six of ours: one has another proxy's label.
	if len(got) != 7 {
		t.Errorf("%d Services listed, want default/kubernetes and 6 of %q:\n%s", len(got), objs, show(got))
	}
	if diff := cmp.Diff(show(want), show(got)); diff != "" {
		t.Errorf("REST source vs clientset (-clientset +rest):\n%s", diff)
	}
}
