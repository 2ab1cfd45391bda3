package install

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"
)

// apiServerURL returns the API server URL from an explicit address or the service
// environment. An address without a scheme is https.
func apiServerURL(explicit string, getenv func(string) string) (string, error) {
	addr := explicit
	if addr == "" {
		host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return "", fmt.Errorf("no API server address: pass --api-server or set KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT")
		}
		addr = net.JoinHostPort(host, port)
	}
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Path != "" && u.Path != "/" {
		return "", fmt.Errorf("API server address %q: want https://host:port", addr)
	}
	if h := u.Hostname(); net.ParseIP(h) == nil && !validDNSName(h) {
		return "", fmt.Errorf("API server address %q: %q is neither an IP address nor a DNS name", addr, h)
	}
	return u.Scheme + "://" + u.Host, nil
}

// validDNSName reports whether h is a DNS name (letters, digits, '-' and '.'): it catches a
// placeholder such as API_SERVER_HOST left in the manifest.
func validDNSName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// buildKubeconfig renders a kubeconfig for server with the service account's CA and a
// tokenFile (a node path): client-go re-reads a tokenFile, and kubevs-ipam reads it on every
// run, so a rotated token is picked up without rewriting the kubeconfig.
func buildKubeconfig(server string, ca []byte, tokenFile string) ([]byte, error) {
	const name = "kubevs"
	cfg := clientcmdv1.Config{
		APIVersion:     "v1",
		Kind:           "Config",
		CurrentContext: name,
		Clusters:       []clientcmdv1.NamedCluster{{Name: name, Cluster: clientcmdv1.Cluster{Server: server, CertificateAuthorityData: ca}}},
		AuthInfos:      []clientcmdv1.NamedAuthInfo{{Name: name, AuthInfo: clientcmdv1.AuthInfo{TokenFile: tokenFile}}},
		Contexts:       []clientcmdv1.NamedContext{{Name: name, Context: clientcmdv1.Context{Cluster: name, AuthInfo: name}}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode kubeconfig: %w", err)
	}
	return b, nil
}

// hostTokenFile is the node path the service account token is copied to, beside the
// kubeconfig that references it.
func (o *Options) hostTokenFile() string { return o.Kubeconfig + ".token" }

// renderKubeconfig reads the service account's token and CA and renders the kubeconfig and
// the token file content it references.
func (o *Options) renderKubeconfig() (kubeconfig, token []byte, err error) {
	server, err := apiServerURL(o.APIServer, o.Getenv)
	if err != nil {
		return nil, nil, err
	}
	token, err = os.ReadFile(o.TokenFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read service account token: %w", err)
	}
	ca, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read service account CA: %w", err)
	}
	kubeconfig, err = buildKubeconfig(server, ca, o.hostTokenFile())
	if err != nil {
		return nil, nil, err
	}
	return kubeconfig, []byte(strings.TrimSpace(string(token)) + "\n"), nil
}
