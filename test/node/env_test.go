//go:build nodee2e

package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// env is what test/scripts/node-e2e.sh hands the test in the guest.
type env struct {
	controlPlane []string // dirs of etcd, kube-apiserver, kube-controller-manager
	nodeBin      []string // dirs of kubelet, kube-scheduler, kubectl, containerd, its shim, ctr
	cniBin       string   // the CNI reference plugins (bridge, loopback, portmap, host-local)
	images       []string // image archives to import into containerd's k8s.io namespace
	manifest     string   // install/manifests/kubevs.yaml
	dnsBin       string   // cmd/clusterdns, the node's cluster DNS (optional: two-node-e2e.sh runs none)
	logDir       string
}

func readEnv(t *testing.T) env {
	t.Helper()
	get := func(k string) string {
		v := os.Getenv(k)
		if v == "" {
			t.Fatalf("%s is not set: run this test with make node-e2e (test/scripts/node-e2e.sh)", k)
		}
		return v
	}
	e := env{
		controlPlane: filepath.SplitList(get("KUBEVS_CONTROL_PLANE_BIN")),
		nodeBin:      filepath.SplitList(get("KUBEVS_NODE_BIN")),
		cniBin:       get("KUBEVS_NODE_CNI_BIN"),
		images:       strings.Fields(get("KUBEVS_NODE_IMAGES")),
		manifest:     get("KUBEVS_NODE_MANIFEST"),
		dnsBin:       os.Getenv("KUBEVS_NODE_DNS"),
		logDir:       os.Getenv("KUBEVS_NODE_LOGDIR"),
	}
	if e.logDir == "" {
		e.logDir = t.TempDir()
	}
	return e
}

// find returns the path of binary name in dirs.
func find(t *testing.T, dirs []string, name string) string {
	t.Helper()
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	t.Fatalf("%s not found in %q", name, dirs)
	return ""
}
