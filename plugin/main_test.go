package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// The test binary doubles as a stand-in kubevs-proxier: symlinked under that name into the CNI
// bin dir, it serves the node API (see fakeProxierMain) so the launch path runs for real.
const fakeProxierName = "kubevs-proxier"

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == fakeProxierName {
		os.Exit(fakeProxierMain(os.Args[1:]))
	}
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// fakeProxierConfig is what the stand-in proxier reads from --config.
type fakeProxierConfig struct {
	Socket   string `json:"socket"`
	StoreDir string `json:"storeDir"`
	// PIDLog gets one line per start: how the tests count launches.
	PIDLog string `json:"pidLog"`
}

func fakeProxierMain(args []string) int {
	if len(args) != 1 || len(args[0]) < 10 || args[0][:9] != "--config=" {
		fmt.Fprintln(os.Stderr, "usage: kubevs-proxier --config=FILE")
		return 2
	}
	b, err := os.ReadFile(args[0][9:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var c fakeProxierConfig
	if err := json.Unmarshal(b, &c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f, err := os.OpenFile(c.PIDLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	f.Close()
	store, err := nodeapi.NewStore(c.StoreDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv := nodeapi.NewServer(c.Socket, store, func() nodeapi.Status { return nodeapi.Status{Ready: true, NodeName: "fake"} })
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// buildEnv is the environment the test binary started with: cniBin builds with it, not
// with os.Environ(), because a test that runs first may have set variables that break the go
// command (leakInto's unreachable HTTPS_PROXY failed every build on a machine whose module
// cache lacked a module of the CNI plugins' graph).
var buildEnv = os.Environ()

// cniBin builds the reference bridge and host-local plugins and kubevs once per test binary,
// and links the test binary in as kubevs-proxier.
func cniBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "kubevs-cni-bin-")
		if binErr != nil {
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			binErr = err
			return
		}
		// CGO_ENABLED=0 as kubevs-install and the Makefile ship it: a static binary.
		cmd := exec.Command(goBin, "build", "-o", binDir+"/",
			"github.com/containernetworking/plugins/plugins/main/bridge",
			"github.com/containernetworking/plugins/plugins/ipam/host-local",
			"github.com/kubevs/kubevs/plugin/cmd/kubevs")
		cmd.Env = append(slices.Clone(buildEnv), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		self, err := os.Executable()
		if err != nil {
			binErr = err
			return
		}
		binErr = os.Symlink(self, filepath.Join(binDir, fakeProxierName))
	})
	if binErr != nil {
		t.Fatalf("build CNI plugins: %v", binErr)
	}
	return binDir
}
