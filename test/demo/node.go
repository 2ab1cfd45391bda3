package demo

// What the demo does to the node, as an administrator would: the reference CNI plugins into
// /opt/cni/bin (what a distribution package does), kubevs-install, and the undo of both. The
// paths are the real node paths; Run only does this inside the test VM, whose root is a
// throw-away overlay.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"

	"github.com/kubevs/kubevs/conflist"
	"github.com/kubevs/kubevs/install"
	"github.com/kubevs/kubevs/plugin"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/test/bed"
)

// Node paths the demo installs into (the installer's defaults).
const (
	binDir        = install.DefaultBinDir
	confDir       = install.DefaultConfDir
	proxierConfig = install.DefaultProxierConfig
	pluginLog     = "/var/log/kubevs-plugin.log"
	runDir        = "/run/kubevs"
	// proxierReadyz is the health address of the manifest's proxier.yaml.
	proxierReadyz = "http://127.0.0.1:10256/readyz"
)

// referencePlugins are the CNI reference plugins the standalone conflist uses besides
// kubevs's own (loopback is what runtimes run for every pod's lo).
var referencePlugins = []string{"bridge", "portmap", "loopback"}

// placeReferencePlugins copies the reference plugins from toolsDir into the CNI bin dir,
// root-owned and 0755 as a package would, and returns the paths it created.
func placeReferencePlugins(toolsDir string) ([]string, error) {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", binDir, err)
	}
	var created []string
	for _, name := range referencePlugins {
		dst := filepath.Join(binDir, name)
		if _, err := os.Stat(dst); err == nil {
			continue // the node has it already
		}
		data, err := os.ReadFile(filepath.Join(toolsDir, name))
		if err != nil {
			return created, fmt.Errorf("read reference plugin %s: %w", name, err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			return created, fmt.Errorf("write %s: %w", dst, err)
		}
		created = append(created, dst)
	}
	return created, nil
}

// installArgs are kubevs-install's flags for a node where the plugin launches the proxier
// (install/kubeadm.md, "Without a DaemonSet").
func installArgs(kubevsDir, nodeName, proxierSource string, creds Credentials) []string {
	return []string{
		"--source-dir=" + kubevsDir,
		"--launch-proxier",
		"--api-server=" + bed.APIServerURL,
		"--token-file=" + creds.TokenFile,
		"--ca-file=" + creds.CAFile,
		"--proxier-config-source=" + proxierSource,
		"--node-name=" + nodeName,
		"--plugin-log-file=" + pluginLog,
	}
}

// runCommand runs bin with args, copying its output to w indented, and fails with its exit
// status.
func runCommand(ctx context.Context, w io.Writer, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	iw := &indentWriter{w: w, prefix: "         | "}
	cmd.Stdout, cmd.Stderr = iw, iw
	err := cmd.Run()
	iw.flush()
	if err != nil {
		return fmt.Errorf("%s: %w (last output: %s)", filepath.Base(bin), err, iw.last)
	}
	return nil
}

// installedNetwork is the pod network a container runtime would load from the CNI conf dir
// after kubevs-install: the conflist kubevs wrote, run with the plugins of the CNI bin dir.
func installedNetwork(cacheDir string) (*bed.Network, error) {
	path := filepath.Join(confDir, conflist.DefaultFileName)
	list, err := libcni.ConfListFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load the installed conflist: %w", err)
	}
	lo, err := libcni.NetworkPluginConfFromBytes([]byte(fmt.Sprintf(`{"cniVersion": %q, "name": "cni-loopback", "type": "loopback"}`, list.CNIVersion)))
	if err != nil {
		return nil, fmt.Errorf("parse loopback conf: %w", err)
	}
	return &bed.Network{
		ConfList:     list,
		ConfListPath: path,
		Loopback:     lo,
		CNI:          libcni.NewCNIConfigWithCacheDir([]string{binDir}, cacheDir, nil),
	}, nil
}

// supervisorPID reads the pid the plugin's supervisor wrote, 0 if none.
func supervisorPID() int {
	data, err := os.ReadFile(filepath.Join(runDir, plugin.PIDFileName))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// proxierReady answers nil once the proxier reports it has synced.
func proxierReady(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, proxierReadyz, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", proxierReadyz, resp.Status)
	}
	return nil
}

// stopSupervisor stops the plugin-launched supervisor and its proxier (SIGTERM, as
// plugin/README.md says) and waits until the launch lock is free, which the supervisor holds
// for its whole life.
func stopSupervisor(ctx context.Context) error {
	pid := supervisorPID()
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop supervisor %d: %w", pid, err)
	}
	return poll(ctx, time.Minute, func(context.Context) error {
		f, err := plugin.TryLock(filepath.Join(runDir, plugin.LaunchLockName))
		if err != nil {
			return fmt.Errorf("supervisor %d still holds the launch lock: %w", pid, err)
		}
		return f.Close()
	})
}

// verifyClean checks that the node holds nothing of kubevs any more.
func verifyClean(ctx context.Context) error {
	var left []string
	paths := []string{filepath.Join(confDir, conflist.DefaultFileName), proxierConfig, install.DefaultKubeconfig}
	for _, b := range install.DefaultBinaries {
		paths = append(paths, filepath.Join(binDir, b))
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			left = append(left, p)
		}
	}
	if _, err := netlink.LinkByName(link.DefaultDummy); err == nil {
		left = append(left, "link "+link.DefaultDummy)
	}
	out, err := exec.CommandContext(ctx, "ipvsadm", "-Sn").CombinedOutput()
	if err != nil {
		return fmt.Errorf("ipvsadm -Sn: %w: %s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		left = append(left, "IPVS: "+s)
	}
	if proxierReady(ctx) == nil {
		left = append(left, "a proxier answering on "+proxierReadyz)
	}
	if len(left) > 0 {
		return fmt.Errorf("left on the node: %s", strings.Join(left, "; "))
	}
	return nil
}

// deleteLink removes the named link if it exists (the standalone bridge).
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// tail returns about the last n bytes of the file at path, for a failure message.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	return string(data)
}

// indentWriter prefixes every line written through it.
type indentWriter struct {
	w      io.Writer
	prefix string
	buf    []byte
	// last is the last complete line written.
	last string
}

func (iw *indentWriter) Write(p []byte) (int, error) {
	iw.buf = append(iw.buf, p...)
	for {
		i := strings.IndexByte(string(iw.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		iw.last = string(iw.buf[:i])
		fmt.Fprintf(iw.w, "%s%s\n", iw.prefix, iw.last)
		iw.buf = iw.buf[i+1:]
	}
}

func (iw *indentWriter) flush() {
	if len(iw.buf) > 0 {
		iw.last = string(iw.buf)
		fmt.Fprintf(iw.w, "%s%s\n", iw.prefix, iw.buf)
		iw.buf = nil
	}
}
