package ipam

// kubevs-ipam runs once per pod ADD, DEL and CHECK, so its start-up time is paid by every pod.
// Linking client-go's clientset costs about 10 ms of package initialisation per run (measured
// here: VERSION in 12.8 ms against host-local's 2.7 ms) and 30 MB of binary, for one GET of
// the Node. So this file reads the kubeconfig itself (the subset a node component uses:
// server, CA, bearer token or client certificate) and issues that GET with net/http.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// kubeconfig is the part of a kubeconfig file kubevs-ipam understands.
type kubeconfig struct {
	CurrentContext string `json:"current-context"`
	Clusters       []struct {
		Name    string `json:"name"`
		Cluster struct {
			Server                   string `json:"server"`
			CertificateAuthority     string `json:"certificate-authority"`
			CertificateAuthorityData string `json:"certificate-authority-data"`
			InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
			TLSServerName            string `json:"tls-server-name"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		Name string `json:"name"`
		User struct {
			Token                 string          `json:"token"`
			TokenFile             string          `json:"tokenFile"`
			ClientCertificate     string          `json:"client-certificate"`
			ClientCertificateData string          `json:"client-certificate-data"`
			ClientKey             string          `json:"client-key"`
			ClientKeyData         string          `json:"client-key-data"`
			Exec                  json.RawMessage `json:"exec"`
			AuthProvider          json.RawMessage `json:"auth-provider"`
			Username              string          `json:"username"`
			As                    string          `json:"as"`
			AsGroups              []string        `json:"as-groups"`
			AsUID                 string          `json:"as-uid"`
			AsUserExtra           json.RawMessage `json:"as-user-extra"`
		} `json:"user"`
	} `json:"users"`
	Contexts []struct {
		Name    string `json:"name"`
		Context struct {
			Cluster string `json:"cluster"`
			User    string `json:"user"`
		} `json:"context"`
	} `json:"contexts"`
}

// apiClient is what a kubeconfig resolves to: a server and a client that authenticates to it.
type apiClient struct {
	server string
	token  string
	// asUser and asGroups impersonate (kubectl's --as and --as-group).
	asUser   string
	asGroups []string
	http     *http.Client
}

// loadKubeconfig resolves the current context of the kubeconfig at path.
func loadKubeconfig(path string) (*apiClient, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, fmt.Errorf("decode kubeconfig %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p) // relative paths are relative to the kubeconfig, as in kubectl
	}
	ctxName := kc.CurrentContext
	if ctxName == "" && len(kc.Contexts) == 1 {
		ctxName = kc.Contexts[0].Name
	}
	var clusterName, userName string
	found := false
	for _, c := range kc.Contexts {
		if c.Name == ctxName {
			clusterName, userName, found = c.Context.Cluster, c.Context.User, true
		}
	}
	if !found {
		return nil, fmt.Errorf("kubeconfig %s: no context %q", path, ctxName)
	}
	c := &apiClient{}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	found = false
	for _, cl := range kc.Clusters {
		if cl.Name != clusterName {
			continue
		}
		found = true
		u, err := url.Parse(cl.Cluster.Server)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("kubeconfig %s: cluster %s: bad server %q", path, clusterName, cl.Cluster.Server)
		}
		c.server = strings.TrimSuffix(cl.Cluster.Server, "/")
		tlsConf.InsecureSkipVerify = cl.Cluster.InsecureSkipTLSVerify
		tlsConf.ServerName = cl.Cluster.TLSServerName
		ca, err := dataOrFile(cl.Cluster.CertificateAuthorityData, rel(cl.Cluster.CertificateAuthority))
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: certificate authority: %w", path, err)
		}
		if ca != nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(ca) {
				return nil, fmt.Errorf("kubeconfig %s: certificate authority holds no PEM certificate", path)
			}
			tlsConf.RootCAs = pool
		}
	}
	if !found {
		return nil, fmt.Errorf("kubeconfig %s: no cluster %q", path, clusterName)
	}
	for _, us := range kc.Users {
		if us.Name != userName {
			continue
		}
		u := us.User
		if len(u.Exec) > 0 || len(u.AuthProvider) > 0 || u.Username != "" {
			return nil, fmt.Errorf("kubeconfig %s: user %s: exec, auth-provider and basic auth are not supported by kubevs-ipam; use a token or a client certificate", path, userName)
		}
		if u.AsUID != "" || len(u.AsUserExtra) > 0 {
			return nil, fmt.Errorf("kubeconfig %s: user %s: as-uid and as-user-extra are not supported by kubevs-ipam", path, userName)
		}
		c.asUser, c.asGroups = u.As, u.AsGroups
		c.token = u.Token
		if c.token == "" && u.TokenFile != "" {
			b, err := os.ReadFile(rel(u.TokenFile))
			if err != nil {
				return nil, fmt.Errorf("kubeconfig %s: token file: %w", path, err)
			}
			c.token = strings.TrimSpace(string(b))
		}
		cert, err := dataOrFile(u.ClientCertificateData, rel(u.ClientCertificate))
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: client certificate: %w", path, err)
		}
		key, err := dataOrFile(u.ClientKeyData, rel(u.ClientKey))
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: client key: %w", path, err)
		}
		if cert != nil || key != nil {
			pair, err := tls.X509KeyPair(cert, key)
			if err != nil {
				return nil, fmt.Errorf("kubeconfig %s: client certificate: %w", path, err)
			}
			tlsConf.Certificates = []tls.Certificate{pair}
		}
	}
	if c.token != "" && strings.HasPrefix(c.server, "http://") {
		return nil, fmt.Errorf("kubeconfig %s: clusters[%s].cluster.server %q is http://: refusing to send the bearer token of user %s in clear text; use https", path, clusterName, c.server, userName)
	}
	c.http = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, Proxy: nil}, Timeout: apiServerTimeout}
	return c, nil
}

// dataOrFile returns base64-decoded data, else the content of file, else nil.
func dataOrFile(data, file string) ([]byte, error) {
	if data != "" {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("decode base64: %w", err)
		}
		return b, nil
	}
	if file != "" {
		return os.ReadFile(file)
	}
	return nil, nil
}

// errNodeNotFound: the API server has no Node of that name.
var errNodeNotFound = errors.New("node not found")

// nodePodCIDRs GETs the Node name and returns its spec.podCIDRs (or spec.podCIDR).
func (c *apiClient) nodePodCIDRs(ctx context.Context, name string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+"/api/v1/nodes/"+url.PathEscape(name), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kubevs-ipam")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.asUser != "" {
		req.Header.Set("Impersonate-User", c.asUser)
		for _, g := range c.asGroups {
			req.Header.Add("Impersonate-Group", g)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("get node %s: read response: %w", name, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("get node %s: %w", name, errNodeNotFound)
	case resp.StatusCode != http.StatusOK:
		var st struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &st) == nil && st.Message != "" {
			msg = st.Message
		}
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return nil, fmt.Errorf("get node %s: %s: %s", name, resp.Status, msg)
	}
	var node struct {
		Kind string `json:"kind"`
		Spec struct {
			PodCIDR  string   `json:"podCIDR"`
			PodCIDRs []string `json:"podCIDRs"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &node); err != nil {
		return nil, fmt.Errorf("get node %s: decode: %w", name, err)
	}
	if node.Kind != "Node" {
		return nil, fmt.Errorf("get node %s: the answer is a %q, not a Node", name, node.Kind)
	}
	if len(node.Spec.PodCIDRs) == 0 && node.Spec.PodCIDR != "" {
		return []string{node.Spec.PodCIDR}, nil
	}
	return node.Spec.PodCIDRs, nil
}
