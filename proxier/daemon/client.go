package daemon

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubevs/kubevs/proxier/config"
)

// InstalledKubeconfig is where kubevs-install writes the kubeconfig of the node's kubevs
// binaries (install.DefaultKubeconfig). A proxier launched by the CNI plugin, outside a
// pod, finds its credentials there.
const InstalledKubeconfig = "/var/lib/kubevs/kubeconfig"

// NewClient returns a clientset from the kubeconfig file at path. With path empty it uses
// the in-cluster configuration, or, outside a pod, InstalledKubeconfig if it exists.
func NewClient(path string) (kubernetes.Interface, error) {
	return newClient(path, config.ClientConnectionConfiguration{})
}

// newClient is NewClient with the rate limit and content types of cc (zero: defaults).
func newClient(path string, cc config.ClientConnectionConfiguration) (kubernetes.Interface, error) {
	cfg, err := restConfig(path)
	if err != nil {
		return nil, err
	}
	applyClientConnection(cfg, cc)
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create API client: %w", err)
	}
	return c, nil
}

func restConfig(path string) (*rest.Config, error) {
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, nil
	}
	if errors.Is(err, rest.ErrNotInCluster) {
		if _, statErr := os.Stat(InstalledKubeconfig); statErr == nil {
			return restConfig(InstalledKubeconfig)
		}
	}
	return nil, fmt.Errorf("no kubeconfig given, and in-cluster configuration failed: %w", err)
}

// applyClientConnection sets the user agent, content types and rate limit of cfg.
func applyClientConnection(cfg *rest.Config, cc config.ClientConnectionConfiguration) {
	cfg.UserAgent = "kubevs-proxier"
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if cc.ContentType != "" {
		cfg.ContentType = cc.ContentType
	}
	if cc.AcceptContentTypes != "" {
		cfg.AcceptContentTypes = cc.AcceptContentTypes
	}
	cfg.QPS, cfg.Burst = cc.QPS, int(cc.Burst) // zero: client-go's 5 and 10
}
