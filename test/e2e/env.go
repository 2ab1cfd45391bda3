// Package e2e is kubevs's end-to-end scenario API and suite. Tests read like the upstream
// Kubernetes e2e tests:
//
//	f := e2e.New(t)
//	svc := f.CreateService("web")
//	pods := f.CreatePods("web", 2)
//	f.ExpectHTTP(f.FromOutside(), f.NodePortURL(svc, "/hostname")).Hostname(pods...)
//
// TestMain (Main) starts one test bed (package bed: real etcd, kube-apiserver and
// kube-controller-manager, the node's real CNI network, an outside host) per test binary.
// Every expectation polls until it holds or a bounded timeout passes.
//
// Where it runs: inside the test VM (test/scripts/e2e.sh, KUBEVS_IN_VM=1), where the guest is
// the node; or on the host as root, where Main re-executes the test binary in a fresh network
// namespace (unshare -n) that becomes the node. Environment:
//
//	KUBEVS_CONTROL_PLANE_BIN  PATH-style dirs of etcd, kube-apiserver, kube-controller-manager
//	                          (default: ask test/scripts/control-plane.sh, host only)
//	KUBEVS_E2E_BIN            dir of the CNI reference plugins and testserver (default: built
//	                          into a temporary dir with go build, host only)
//	KUBEVS_BIN                dir of kubevs's own binaries (make build's bin/); see kubevs.go
//	KUBEVS_E2E_LOGDIR         keep component and pod logs here (default: a temporary dir, kept
//	                          and printed when the suite fails)
//	KUBEVS_E2E_TIMEOUT        bound of each expectation (default 60s, 3m in the VM)
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kubevs/kubevs/internal/testenv"
)

// nodeNetnsEnv marks a test binary already re-executed into its own network namespace.
const nodeNetnsEnv = "KUBEVS_E2E_NODE_NETNS"

// CNIPackages are the CNI reference plugins the bed's conflist uses, built from the module in
// test/tools/cni (kept apart so portmap's dependencies stay out of kubevs's go.sum).
// test/scripts/e2e.sh builds the same list.
var CNIPackages = []string{
	"github.com/containernetworking/plugins/plugins/main/bridge",
	"github.com/containernetworking/plugins/plugins/main/loopback",
	"github.com/containernetworking/plugins/plugins/ipam/host-local",
	"github.com/containernetworking/plugins/plugins/meta/portmap",
}

// TestServerPackage is the pod workload, built from kubevs's own module.
const TestServerPackage = "github.com/kubevs/kubevs/test/testserver/cmd/testserver"

// enterNodeNetns re-executes the test binary in a fresh network namespace when it runs on the
// host, so the bed never touches the host's own network. It returns only if no re-exec is
// needed (in the VM, or already re-executed).
func enterNodeNetns() error {
	if testenv.InVM() || os.Getenv(nodeNetnsEnv) != "" {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find test binary: %w", err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return fmt.Errorf("find unshare: %w", err)
	}
	if os.Getenv("KUBEVS_E2E_BIN") == "" {
		// The bed's tools are built inside the namespace, which has no route to the module
		// proxy: fetch their modules now (nothing to fetch with a warm module cache; on a
		// fresh machine the first run failed on portmap's go-shellwords).
		dl := exec.Command("go", "mod", "download")
		dl.Dir = repoPath("test/tools/cni")
		if out, err := dl.CombinedOutput(); err != nil {
			return fmt.Errorf("download the modules of the bed's tools: %w\n%s", err, out)
		}
	}
	env := append(os.Environ(), nodeNetnsEnv+"=1")
	args := append([]string{"unshare", "--net", "--", self}, os.Args[1:]...)
	return syscall.Exec(unshare, args, env)
}

// binaries are the resolved locations of everything the bed runs.
type binaries struct {
	controlPlane []string
	tools        string // CNI reference plugins and testserver
	kubevs       string // kubevs's own binaries, may be empty
	cleanup      func()
}

func resolveBinaries(ctx context.Context) (*binaries, error) {
	b := &binaries{cleanup: func() {}, kubevs: os.Getenv("KUBEVS_BIN")}
	if v := os.Getenv("KUBEVS_CONTROL_PLANE_BIN"); v != "" {
		b.controlPlane = filepath.SplitList(v)
	} else {
		if testenv.InVM() {
			return nil, fmt.Errorf("KUBEVS_CONTROL_PLANE_BIN is not set (test/scripts/e2e.sh sets it)")
		}
		out, err := exec.CommandContext(ctx, "bash", repoPath("test/scripts/control-plane.sh"), "--path").Output()
		if err != nil {
			return nil, fmt.Errorf("run control-plane.sh: %w", err)
		}
		b.controlPlane = filepath.SplitList(strings.TrimSpace(string(out)))
	}
	if v := os.Getenv("KUBEVS_E2E_BIN"); v != "" {
		b.tools = v
		return b, nil
	}
	if testenv.InVM() {
		return nil, fmt.Errorf("KUBEVS_E2E_BIN is not set (test/scripts/e2e.sh sets it)")
	}
	dir, err := os.MkdirTemp("", "kubevs-e2e-bin-")
	if err != nil {
		return nil, fmt.Errorf("create tools dir: %w", err)
	}
	b.tools, b.cleanup = dir, func() { _ = os.RemoveAll(dir) }
	start := time.Now()
	for _, build := range []struct {
		dir  string
		pkgs []string
	}{
		{repoPath("test/tools/cni"), CNIPackages},
		{repoPath(""), []string{TestServerPackage}},
	} {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-trimpath", "-o", dir + "/"}, build.pkgs...)...)
		cmd.Dir = build.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.cleanup()
			return nil, fmt.Errorf("build bed tools %v: %w\n%s", build.pkgs, err, out)
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: built bed tools in %s\n", time.Since(start).Round(time.Millisecond))
	return b, nil
}

// repoPath turns a path relative to the repository root into one relative to this package's
// directory, where go test runs the binary.
func repoPath(p string) string { return filepath.Join("..", "..", p) }

// startTimeout bounds each bed component's start: generous in the VM, whose CPU is emulated
// and shared with whatever else the host runs.
func startTimeout() time.Duration {
	if testenv.InVM() {
		return 8 * time.Minute
	}
	return 3 * time.Minute
}

// timeout is the bound of each expectation.
func timeout() time.Duration {
	if v := os.Getenv("KUBEVS_E2E_TIMEOUT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	if testenv.InVM() {
		return 3 * time.Minute
	}
	return time.Minute
}
