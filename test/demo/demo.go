// Package demo is `make demo`: kubevs seen working on one node, from a bare machine.
//
// Run, inside the test VM (the guest is the node; its root is a throw-away overlay, so
// writing /opt/cni/bin and /etc/cni/net.d is safe), does what an administrator and a
// cluster would, and says so on its writer step by step:
//
//  1. starts the real control plane (package bed: etcd, kube-apiserver, the EndpointSlice
//     controllers) and registers the node;
//  2. applies kubevs's identity from install/manifests/kubevs.yaml (Namespace,
//     ServiceAccount, ClusterRole, ClusterRoleBinding) and issues the ServiceAccount a token
//     through the TokenRequest API, as the DaemonSet's pod would get one;
//  3. puts the CNI reference plugins into /opt/cni/bin, as a distribution package does, and
//     runs kubevs-install exactly as install/kubeadm.md says for a node without the
//     DaemonSet: binaries into /opt/cni/bin, the standalone conflist into /etc/cni/net.d, the
//     kubeconfig, and the manifest's proxier.yaml for the proxier the plugin launches;
//  4. creates a NodePort Service and three pods behind it and a client pod, through the
//     conflist kubevs-install wrote (package podsim, libcni); the first pod's ADD launches
//     kubevs-proxier;
//  5. curls the ClusterIP from the client pod until all three pods answered, the NodePort
//     from the outside host, and the Service from one of its own pods until that pod answered
//     itself (hairpin);
//  6. prints `kubevs status` (no drift: exit 0).
//
// Then it undoes all of it. Run returns an error naming the first step that failed.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/test/bed"
	"github.com/kubevs/kubevs/test/podsim"
)

// Config says where the demo finds what it runs.
type Config struct {
	// ControlPlaneBin are the dirs of etcd, kube-apiserver and kube-controller-manager
	// (test/scripts/control-plane.sh --path).
	ControlPlaneBin []string
	// ToolsDir holds the CNI reference plugins (bridge, portmap, loopback) and testserver.
	ToolsDir string
	// KubevsDir holds kubevs, kubevs-ipam, kubevs-proxier and kubevs-install.
	KubevsDir string
	// Manifest is install/manifests/kubevs.yaml.
	Manifest string
	// LogDir receives the components' logs and, at the end, the plugin's and the
	// proxier's. Empty: a temporary dir, removed unless Run fails.
	LogDir string
	// StartTimeout bounds the start of each control plane component. Default 8 minutes.
	StartTimeout time.Duration
	// StepTimeout bounds each check (proxier ready, each curl probe, status). Default 3
	// minutes.
	StepTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.StartTimeout == 0 {
		c.StartTimeout = 8 * time.Minute
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = 3 * time.Minute
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.ControlPlaneBin) == 0 {
		errs = append(errs, errors.New("no control plane bin dir (test/scripts/control-plane.sh --path)"))
	}
	for _, f := range []struct{ what, path string }{
		{"tools dir", c.ToolsDir}, {"kubevs bin dir", c.KubevsDir}, {"manifest", c.Manifest},
	} {
		if f.path == "" {
			errs = append(errs, fmt.Errorf("no %s", f.what))
		} else if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.what, err))
		}
	}
	return errors.Join(errs...)
}

// Names of what the demo creates in the cluster.
const (
	namespace  = "demo"
	app        = "web"
	replicas   = 3
	clientName = "client"
)

// Run runs the demo (see the package comment), writing progress to w. It refuses to run
// outside the test VM: it installs into the node's real CNI directories.
func Run(ctx context.Context, cfg Config, w io.Writer) (err error) {
	cfg.setDefaults()
	if !testenv.InVM() {
		return errors.New("the demo installs kubevs into /opt/cni/bin and /etc/cni/net.d: it runs only in the test VM (make demo)")
	}
	if os.Geteuid() != 0 {
		return errors.New("the demo needs root")
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("invalid demo configuration: %w", err)
	}
	manifestData, err := os.ReadFile(cfg.Manifest)
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	manifest, err := ParseManifest(manifestData)
	if err != nil {
		return fmt.Errorf("parse manifest %s: %w", cfg.Manifest, err)
	}
	work, err := os.MkdirTemp("", "kubevs-demo-")
	if err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	d := &run{cfg: cfg, w: w, start: time.Now(), work: work, manifest: manifest}
	if d.logDir = cfg.LogDir; d.logDir == "" {
		d.logDir = filepath.Join(work, "logs")
	}
	defer func() {
		err = errors.Join(err, d.cleanup(context.WithoutCancel(ctx)))
		if err != nil {
			for _, f := range []string{"kubevs-proxier.log", "kubevs-plugin.log"} {
				if path := filepath.Join(d.logDir, f); fileExists(path) {
					fmt.Fprintf(w, "demo: last lines of %s:\n%s\n", f, tail(path, 3000))
				}
			}
			fmt.Fprintf(w, "demo: FAILED after %s: %v\n", since(d.start), err)
			if cfg.LogDir == "" {
				fmt.Fprintf(w, "demo: logs (kept) in %s (in the test VM's throw-away root: set KUBEVS_DEMO_LOGDIR to a share to keep them)\n", d.logDir)
			}
			return
		}
		fmt.Fprintf(w, "demo: PASSED in %s: ClusterIP, NodePort and hairpin answered, kubevs status shows no drift\n", since(d.start))
		if cfg.LogDir == "" {
			_ = os.RemoveAll(work)
		}
	}()
	return d.steps(ctx)
}

// run is one demo run and what it has set up, for cleanup.
type run struct {
	cfg      Config
	w        io.Writer
	start    time.Time
	work     string
	logDir   string
	manifest *Manifest
	step     int

	bed       *bed.Bed
	sim       *podsim.Sim
	placed    []string // reference plugins the demo put into the bin dir
	installed bool
	creds     Credentials
	proxier   string // proxier.yaml source file
}

// total is the number of numbered steps.
const total = 8

// begin prints a numbered step's headline and returns a func printing its end.
func (d *run) begin(what string) func(err error) error {
	d.step++
	fmt.Fprintf(d.w, "demo: [%d/%d] %s\n", d.step, total, what)
	t0 := time.Now()
	return func(err error) error {
		if err != nil {
			return fmt.Errorf("step %d (%s): %w", d.step, what, err)
		}
		fmt.Fprintf(d.w, "         ok (%s; %s since start)\n", since(t0), since(d.start))
		return nil
	}
}

func (d *run) steps(ctx context.Context) error {
	for _, s := range []struct {
		what string
		fn   func(context.Context) error
	}{
		{"start the control plane: etcd, kube-apiserver, kube-controller-manager (this is the slow part under emulation)", d.startBed},
		{"apply kubevs's ServiceAccount and RBAC from install/manifests/kubevs.yaml; issue its token", d.applyIdentity},
		{"install kubevs on the node with kubevs-install, as install/kubeadm.md says for a node where the plugin launches the proxier", d.install},
		{"create Service demo/web (NodePort) and pods web-0, web-1, web-2 and client through the installed conflist", d.createWorkload},
		{"curl the ClusterIP from pod client until web-0, web-1 and web-2 have answered", d.checkClusterIP},
		{"curl the NodePort from the outside host", d.checkNodePort},
		{"hairpin: pod web-0 curls its own Service until web-0 answers itself", d.checkHairpin},
		{"kubevs status: the node's IPVS table against the API", d.status},
	} {
		end := d.begin(s.what)
		if err := end(s.fn(ctx)); err != nil {
			return err
		}
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ConfigFromEnv reads the configuration from the environment test/scripts/e2e.sh and
// test/scripts/demo.sh set for the guest; repoRoot locates the manifest:
//
//	KUBEVS_CONTROL_PLANE_BIN  PATH-style dirs of etcd, kube-apiserver, kube-controller-manager
//	KUBEVS_E2E_BIN            dir of the CNI reference plugins and testserver
//	KUBEVS_BIN                dir of kubevs's binaries, kubevs-install included
//	KUBEVS_DEMO_LOGDIR        keep logs there
func ConfigFromEnv(getenv func(string) string, repoRoot string) Config {
	cfg := Config{
		ToolsDir:  getenv("KUBEVS_E2E_BIN"),
		KubevsDir: getenv("KUBEVS_BIN"),
		Manifest:  filepath.Join(repoRoot, "install", "manifests", "kubevs.yaml"),
		LogDir:    getenv("KUBEVS_DEMO_LOGDIR"),
	}
	if v := getenv("KUBEVS_CONTROL_PLANE_BIN"); v != "" {
		cfg.ControlPlaneBin = filepath.SplitList(v)
	}
	return cfg
}
