package plugin

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

func TestCleanEnvIsAllowList(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://proxy.example:3128")
	t.Setenv("GODEBUG", "x509ignoreCN=0")
	t.Setenv("LD_LIBRARY_PATH", "/nonexistent")
	t.Setenv("PATH", "/tmp/evil:/usr/bin")
	if got, want := strings.Join(cleanEnv(), " "), "PATH="+ProxierPATH; got != want {
		t.Errorf("env = %q, want %q", got, want)
	}
}

// TestSupervisedChildEnvAndFDs: the child Supervise runs sees only the fixed environment
// and, once closeOnExecFrom ran (Confine, launch), inherits no descriptor that was open
// without close-on-exec.
func TestSupervisedChildEnvAndFDs(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://proxy.example:3128")
	leak, err := unix.Open("/dev/zero", unix.O_RDONLY, 0) // no O_CLOEXEC: as a runtime might leave one
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leak)
	if err := closeOnExecFrom(3); err != nil {
		t.Fatal(err)
	}
	if flags, err := unix.FcntlInt(uintptr(leak), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("fd %d flags %#x, %v: not close-on-exec", leak, flags, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	script := `{ tr '\0' '\n' < /proc/$$/environ; echo --; ls /proc/$$/fd; } > "$0.tmp"; mv "$0.tmp" "$0"; exec sleep 60`
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Supervise(ctx, []string{"/bin/sh", "-c", script, out}, DefaultBackoff, nil) }()
	var b []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, err = os.ReadFile(out); err == nil || time.Now().After(deadline) {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b == nil {
		t.Fatal("the supervised child wrote nothing")
	}
	env, fds, _ := strings.Cut(string(b), "--\n")
	supervised := false
	for _, kv := range strings.Fields(env) {
		switch {
		case kv == nodeapi.SupervisedEnv+"=1": // it yields the node API socket to a DaemonSet's proxier
			supervised = true
		case !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "PWD="): // the shell adds PWD
			t.Errorf("child environment has %q", kv)
		}
	}
	if !supervised {
		t.Errorf("child environment %q lacks %s=1", env, nodeapi.SupervisedEnv)
	}
	for _, fd := range strings.Fields(fds) {
		if fd == strconv.Itoa(leak) {
			t.Errorf("child inherited fd %d (open fds %q)", leak, fds)
		}
	}
}

func TestJoinCgroup(t *testing.T) {
	// Not cgroup v2 (a tmpfs or ext4 temp dir): nothing to do, no error.
	dir := filepath.Join(t.TempDir(), "kubevs")
	if moved, err := joinCgroup(dir, 42); moved || err != nil {
		t.Errorf("joinCgroup on a non-cgroup fs = %v, %v; want false, nil", moved, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("created %s outside a cgroup hierarchy", dir)
	}
	// moveInto on a plain directory standing in for the cgroup fs: creates it 0755, writes the pid.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := moveInto(dir, 4242); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); !bytes.Equal(b, []byte("4242")) {
		t.Errorf("cgroup.procs = %q", b)
	}
	// A symlinked cgroup.procs is not followed.
	other := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "kubevs")
	if err := os.Mkdir(link, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(link, "cgroup.procs")); err != nil {
		t.Fatal(err)
	}
	if err := moveInto(link, 1); err == nil {
		t.Error("moveInto followed a symlinked cgroup.procs")
	}
	// On the real hierarchy, when this machine has cgroup v2: a child moves for real.
	if isCgroup2("/sys/fs/cgroup") != nil || os.Geteuid() != 0 {
		t.Log("no cgroup v2 at /sys/fs/cgroup (or not root): the real move is not exercised here")
		return
	}
	cg := "/sys/fs/cgroup/kubevs-test-" + strconv.Itoa(os.Getpid())
	cmd := exec.Command("/bin/sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = os.Remove(cg) }()
	if moved, err := joinCgroup(cg, cmd.Process.Pid); !moved || err != nil {
		t.Fatalf("joinCgroup = %v, %v", moved, err)
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cgroup")
	if !strings.Contains(string(b), "0::/"+filepath.Base(cg)) {
		t.Errorf("child's cgroup = %q", b)
	}
}

func TestLogFilesDoNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "shadow")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "kubevs.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	// The plugin's own log: a symlink is not written through (the plugin logs to stderr).
	var stderr bytes.Buffer
	p := &Plugin{Stderr: &stderr}
	l, closeFn := p.logger(&Config{LogFile: link})
	l.Info("hello")
	closeFn()
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Errorf("plugin log written through a symlink into %s: %q", target, b)
	}
	// The proxier's log: launch refuses it before starting anything.
	cfg := &Config{Socket: filepath.Join(dir, "run", "proxier.sock"), Launch: Launch{Enabled: true, ProxierBinary: "/bin/true", LogFile: link}}
	err := launch(cfg, "")
	if err == nil || !strings.Contains(err.Error(), "open proxier log "+link) || !strings.Contains(err.Error(), syscall.ELOOP.Error()) {
		t.Errorf("launch with a symlinked log = %v; want ELOOP naming %s", err, link)
	}
}
