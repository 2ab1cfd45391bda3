package bed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubevs/kubevs/install/atomicfile"
)

// Loopback endpoints of the control plane. The bed owns the network namespace it runs in
// (a fresh one on the host, the whole guest in the VM), so fixed ports cannot collide.
const (
	EtcdClientURL = "http://127.0.0.1:2379"
	etcdPeerURL   = "http://127.0.0.1:2380"
	// APIServerURL is where kube-apiserver serves.
	APIServerURL = "https://127.0.0.1:6443"
	kcmHealthURL = "https://127.0.0.1:10257/healthz"
	// ServiceCIDR is the IPv4 ClusterIP range the API server allocates from, its primary one.
	ServiceCIDR = "10.96.0.0/16"
	// ServiceCIDRv6 is the IPv6 ClusterIP range of a dual-stack bed (the API server refuses
	// IPv6 service ranges wider than /108).
	ServiceCIDRv6 = "fd00:96::/112"
)

// serviceCIDRs are the service ranges for c, IPv4 first.
func (c NetworkConfig) serviceCIDRs() []string {
	if c.IPv4Only {
		return []string{ServiceCIDR}
	}
	return []string{ServiceCIDR, ServiceCIDRv6}
}

// findBinary looks for name in dirs, in order.
func findBinary(dirs []string, name string) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s in %q: not found (run test/scripts/control-plane.sh)", name, dirs)
}

// startControlPlane starts etcd, kube-apiserver and kube-controller-manager (unless
// Config.NoControllerManager) and waits until each answers its health check. Processes already started are in b.procs, so Close stops them
// whatever fails here.
func (b *Bed) startControlPlane(ctx context.Context) error {
	bins := map[string]string{}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		p, err := findBinary(b.cfg.ControlPlaneBin, name)
		if err != nil {
			return err
		}
		bins[name] = p
	}
	pkiDir := filepath.Join(b.Dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", pkiDir, err)
	}
	p, err := newPKI(pkiDir, b.cfg.APIServerIPs...)
	if err != nil {
		return err
	}
	b.pki = p
	timeout := b.cfg.StartTimeout

	if seed := b.cfg.EtcdSeed; seed != "" {
		if err := copyDataDir(seed, filepath.Join(b.Dir, "etcd")); err != nil {
			return err
		}
	}
	etcd, err := b.start(ctx, "etcd", bins["etcd"],
		"--name=bed", "--data-dir="+filepath.Join(b.Dir, "etcd"),
		"--listen-client-urls="+EtcdClientURL, "--advertise-client-urls="+EtcdClientURL,
		"--listen-peer-urls="+etcdPeerURL, "--initial-advertise-peer-urls="+etcdPeerURL,
		"--initial-cluster=bed="+etcdPeerURL, "--unsafe-no-fsync", "--log-level=warn")
	if err != nil {
		return err
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if err := poll(ctx, "etcd health", timeout, 200*time.Millisecond, etcd, func(ctx context.Context) error {
		return get(ctx, plain, EtcdClientURL+"/health", `"health":"true"`, "")
	}); err != nil {
		return err
	}

	apiserverArgs := append([]string{}, "--etcd-servers="+EtcdClientURL,
		"--bind-address="+apiserverBind(b.cfg.APIServerIPs), "--advertise-address=127.0.0.1", "--secure-port=6443",
		"--tls-cert-file="+p.ServerCert, "--tls-private-key-file="+p.ServerKey,
		"--client-ca-file="+p.CACert,
		"--token-auth-file="+p.TokenFile,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.SAPub, "--service-account-signing-key-file="+p.SAKey,
		"--service-cluster-ip-range="+strings.Join(b.ServiceCIDRs(), ","),
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--allow-privileged=true",
		"--profiling=false")
	if !b.cfg.KubeletNode {
		// No kubelet and no service-account controller: pods get no token volume.
		apiserverArgs = append(apiserverArgs, "--disable-admission-plugins=ServiceAccount")
	} else {
		args, err := kubeletClientArgs(pkiDir, p)
		if err != nil {
			return err
		}
		apiserverArgs = append(apiserverArgs, args...)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	secure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, err := b.startUntilReady(ctx, apiServerStarts, "kube-apiserver", bins["kube-apiserver"], apiserverArgs, func(ctx context.Context) error {
		return get(ctx, secure, APIServerURL+"/readyz", "ok", p.Token)
	}); err != nil {
		return err
	}

	b.Kubeconfig = filepath.Join(b.Dir, "kubeconfig")
	if err := writeKubeconfig(b.Kubeconfig, p); err != nil {
		return err
	}

	if b.cfg.NoControllerManager {
		return nil
	}
	kcmArgs := append([]string{}, "--kubeconfig="+b.Kubeconfig,
		"--authentication-kubeconfig="+b.Kubeconfig, "--authorization-kubeconfig="+b.Kubeconfig,
		"--controllers=endpointslice,endpointslicemirroring",
		// No node IPAM runs (the bed writes the Node's podCIDRs); the range is given for
		// what else reads it, matching the API server's.
		"--service-cluster-ip-range="+strings.Join(b.ServiceCIDRs(), ","),
		"--leader-elect=false", "--use-service-account-credentials=false",
		"--bind-address=127.0.0.1", "--secure-port=10257",
		"--cert-dir="+filepath.Join(b.Dir, "kcm-certs"),
		// Publish endpoint changes at once: scenarios measure the proxier, not batching.
		"--endpointslice-updates-batch-period=0s")
	if b.cfg.KubeletNode {
		kcmArgs = append(kcmArgs, kubeletNodeControllerArgs(b.cfg.Network, p)...)
	}
	kcm, err := b.start(ctx, "kube-controller-manager", bins["kube-controller-manager"], kcmArgs...)
	if err != nil {
		return err
	}
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return poll(ctx, "kube-controller-manager /healthz", timeout, 250*time.Millisecond, kcm, func(ctx context.Context) error {
		return get(ctx, insecure, kcmHealthURL, "ok", "")
	})
}

// apiserverBind is the API server's --bind-address: loopback, or every address when other
// machines must reach it.
func apiserverBind(extra []net.IP) string {
	if len(extra) > 0 {
		return "0.0.0.0"
	}
	return "127.0.0.1"
}

// get fetches url and checks that the answer is 200 and contains want.
func get(ctx context.Context, c *http.Client, url, want, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return fmt.Errorf("GET %s: %s: %.300s", url, resp.Status, body)
	}
	return nil
}

// writeKubeconfig writes an admin kubeconfig (mode 0600) for the bed's API server.
func writeKubeconfig(path string, p *pki) error {
	return writeAdminKubeconfig(path, APIServerURL, p)
}

// WriteRemoteKubeconfig writes an admin kubeconfig (mode 0600) for a component on another
// machine, which reaches the API server at server (https://IP:6443, IP one of
// Config.APIServerIPs), e.g. a second node's kube-proxy.
func (b *Bed) WriteRemoteKubeconfig(path, server string) error {
	return writeAdminKubeconfig(path, server, b.pki)
}

// writeAdminKubeconfig writes an admin kubeconfig (mode 0600) for the API server at server.
func writeAdminKubeconfig(path, server string, p *pki) error {
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: bed
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: bed
  context:
    cluster: bed
    user: admin
current-context: bed
`, server, base64.StdEncoding.EncodeToString(p.caPEM), p.Token)
	// Atomically: a reader on another machine (the benchmark's guest) may wait for the file.
	if err := atomicfile.WriteFile(path, []byte(kc), atomicfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// adminQPS and adminBurst are the client-side rate limits of the bed's admin client.
const adminQPS, adminBurst = 100, 200

// restConfig is the client configuration the kubeconfig describes.
func restConfig(p *pki) *rest.Config {
	return &rest.Config{
		Host:            APIServerURL,
		BearerToken:     p.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM},
		QPS:             adminQPS,
		Burst:           adminBurst,
	}
}

// start starts a component and records it so Close stops it.
func (b *Bed) start(ctx context.Context, name, bin string, args ...string) (*Process, error) {
	p, err := StartProcess(ctx, b.LogDir, name, bin, args...)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, p)
	return p, nil
}

// stopAll stops the bed's processes, last started first.
func (b *Bed) stopAll() error {
	var errs []error
	for i := len(b.procs) - 1; i >= 0; i-- {
		if err := b.procs[i].Stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	b.procs = nil
	return errors.Join(errs...)
}

// ClientAs returns a client that acts as user in groups (impersonated by the admin), so a
// scenario can check what an RBAC role really grants, e.g. the proxier's ClusterRole.
func (b *Bed) ClientAs(user string, groups ...string) (kubernetes.Interface, error) {
	cfg := rest.CopyConfig(b.RESTConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create client as %s: %w", user, err)
	}
	return c, nil
}

// WriteKubeconfigAs writes a kubeconfig (mode 0600) that acts as user in groups, for a
// component (kubevs-proxier) that must run with only the rights its RBAC role grants.
func (b *Bed) WriteKubeconfigAs(path, user string, groups ...string) error {
	if err := writeKubeconfig(path, b.pki); err != nil {
		return err
	}
	var extra strings.Builder
	fmt.Fprintf(&extra, "    as: %q\n", user)
	if len(groups) > 0 {
		extra.WriteString("    as-groups:\n")
		for _, g := range groups {
			fmt.Fprintf(&extra, "    - %q\n", g)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read kubeconfig %s: %w", path, err)
	}
	tokenLine := "    token: " + b.pki.Token + "\n"
	out := strings.Replace(string(data), tokenLine, tokenLine+extra.String(), 1)
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// useControlPlane takes the control plane an admin kubeconfig at path describes, started
// elsewhere (Config.Kubeconfig), and waits until its API server is ready.
func (b *Bed) useControlPlane(ctx context.Context, path string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return fmt.Errorf("load control plane kubeconfig %s: %w", path, err)
	}
	rc.QPS, rc.Burst = adminQPS, adminBurst
	client, err := rest.HTTPClientFor(rc)
	if err != nil {
		return fmt.Errorf("client for %s: %w", rc.Host, err)
	}
	client.Timeout = 5 * time.Second
	if err := poll(ctx, "kube-apiserver at "+rc.Host, b.cfg.StartTimeout, 250*time.Millisecond, nil, func(ctx context.Context) error {
		return get(ctx, client, rc.Host+"/readyz", "ok", "")
	}); err != nil {
		return err
	}
	b.RESTConfig, b.Kubeconfig = rc, path
	return nil
}

// copyDataDir copies the etcd data dir src to dst, which must not exist, with etcd's modes
// (directories 0700, files 0600).
func copyDataDir(src, dst string) error {
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return fmt.Errorf("copy etcd data %s to %s: %w", src, dst, err)
	}
	return filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		}
		if err := os.Chmod(path, mode); err != nil {
			return fmt.Errorf("copy etcd data: %w", err)
		}
		return nil
	})
}
