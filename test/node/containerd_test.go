//go:build nodee2e

package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/test/bed"
)

// Where the node keeps its runtime state, and the names kubelet and containerd share.
const (
	containerdRoot   = "/var/lib/containerd"
	containerdState  = "/run/containerd"
	containerdSocket = "/run/containerd/containerd.sock"
	cniConfDir       = "/etc/cni/net.d"
	cniBinDir        = "/opt/cni/bin"
	// SandboxImage is containerd 2.3's default sandbox image, kubeadm 1.36's PauseVersion.
	SandboxImage = "registry.k8s.io/pause:3.10.2"
	// runc is Debian's (package runc): see test/scripts/node-bins.sh.
	runc = "/usr/sbin/runc"
)

// containerdConfig is containerd 2.x's configuration (version 3): the CRI plugin with the
// runc runtime on the cgroupfs driver (the kubelet asks the runtime which driver it uses),
// the overlayfs snapshotter, CNI in the standard places, the sandbox image pinned.
func containerdConfig() string {
	return fmt.Sprintf(`version = 3
root = %q
state = %q

[grpc]
  address = %q

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %q

[plugins.'io.containerd.cri.v1.runtime']
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = %q
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%q]
    conf_dir = %q
`, containerdRoot, containerdState, containerdSocket, SandboxImage, runc, cniBinDir, cniConfDir)
}

// prepareHost makes the guest look like a fresh node: the root the namespace's root and shared (as systemd makes
// it; kubevs's DaemonSet mounts /run/netns with HostToContainer propagation, which containerd
// refuses on a private mount), containerd's root on its own tmpfs (the guest's root is an
// overlay, which overlayfs cannot stack on), no CNI configuration (the host's podman
// conflist is hidden: only kubevs may make this node Ready), and the reference plugins kubevs's
// standalone mode chains in /opt/cni/bin, owned by root and writable only by root. The
// guest's hostname becomes node, the Node's name, as on a real node: upstream's specs with a
// hostNetwork server expect its /hostname to answer the Node's name (the guest boots as
// kubevs-vm).
func prepareHost(t *testing.T, e env, node string) {
	t.Helper()
	if err := unix.Sethostname([]byte(node)); err != nil {
		t.Fatalf("hostname %s: %v", node, err)
	}
	// The guest's /init chroots into the overlay root, under which the initramfs stays the
	// mount namespace's root. setns into a container's mount namespace (runc exec, so every
	// exec probe, e.g. the installer's startup probe) lands at the namespace's root: with the
	// overlay beside it, not over it, runc exec saw the initramfs ("stat
	// /opt/kubevs/bin/kubevs-install: no such file or directory"). Moving the overlay over the
	// initramfs root, as switch_root does, makes it the namespace's root; /init (PID 1) keeps
	// its own root, the initramfs underneath, for what it does after the test. The move is
	// made from the initramfs's view (mount(2) from here, onto /proc/1/root, fails with ELOOP).
	if out, err := exec.Command("chroot", "/proc/1/root", "/bin/busybox", "mount", "-o", "move", "/newroot", "/").CombinedOutput(); err != nil {
		t.Fatalf("move the guest's root over the initramfs: %v: %s", err, out)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		t.Fatalf("make / rshared: %v", err)
	}
	for _, dir := range []string{containerdRoot, "/var/lib/kubelet"} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0711"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", dir, err)
		}
	}
	if err := os.RemoveAll(cniConfDir); err != nil {
		t.Fatalf("clear %s: %v", cniConfDir, err)
	}
	for _, dir := range []string{cniConfDir, cniBinDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"bridge", "loopback", "portmap", "host-local"} {
		data, err := os.ReadFile(filepath.Join(e.cniBin, p))
		if err != nil {
			t.Fatalf("CNI plugin %s: %v", p, err)
		}
		if err := os.WriteFile(filepath.Join(cniBinDir, p), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// startContainerd starts containerd, waits until ctr talks to it, and imports the images into
// the k8s.io namespace, where the kubelet's images live.
func startContainerd(ctx context.Context, t *testing.T, e env) *bed.Process {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "containerd.toml")
	if err := os.WriteFile(cfg, []byte(containerdConfig()), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := find(t, e.nodeBin, "containerd")
	// containerd finds its shim (containerd-shim-runc-v2) on PATH.
	t.Setenv("PATH", filepath.Dir(bin)+":"+os.Getenv("PATH"))
	p, err := bed.StartProcess(ctx, e.logDir, "containerd", bin, "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	ctr := find(t, e.nodeBin, "ctr")
	if err := pollFor(ctx, 10*time.Minute, p, func() error {
		out, err := exec.CommandContext(ctx, ctr, "-a", containerdSocket, "version").CombinedOutput()
		if err != nil {
			return fmt.Errorf("ctr version: %w: %s", err, out)
		}
		return nil
	}); err != nil {
		t.Fatalf("containerd: %v", err)
	}
	for _, img := range e.images {
		start := time.Now()
		out, err := exec.CommandContext(ctx, ctr, "-a", containerdSocket, "-n", "k8s.io", "images", "import", img).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr -n k8s.io images import %s: %v\n%s", img, err, out)
		}
		t.Logf("imported %s in %s: %s", filepath.Base(img), time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
	}
	return p
}

// pollFor polls cond every half second until it returns nil, proc exits, or timeout passes.
func pollFor(ctx context.Context, timeout time.Duration, proc *bed.Process, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		last := cond()
		if last == nil {
			return nil
		}
		if proc != nil {
			if exited, err := proc.Exited(); exited {
				return fmt.Errorf("%s exited (%v); log tail:\n%s", proc.Name, err, proc.Tail(4096))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last: %w", ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
