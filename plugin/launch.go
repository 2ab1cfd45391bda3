package plugin

// Launching the proxier. One lock file, <socket dir>/launch.lock, says "a supervisor is alive
// or being started". The launcher takes it with a non-blocking flock; if that fails someone
// else is on it and the launcher only waits for the socket. If it succeeds, the launcher starts
// `kubevs supervise` with the locked file as its fd 3: a flock belongs to the open file, so
// the supervisor holds the lock for its whole life and the launcher can close its copy and
// exit. When the supervisor dies (even by kill -9) the kernel drops the lock, and the next ADD
// or STATUS launches a new one.
//
// The supervisor is detached from the container runtime: a new session (setsid, so no
// process-group or terminal signal of the runtime reaches it), stdin from /dev/null, stdout and
// stderr to the log file (opened O_NOFOLLOW; never the plugin's stdout pipe, which the runtime
// reads to EOF), a fixed environment and no inherited descriptor (see confine.go), and it is
// reparented once the plugin exits.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// SuperviseCommand is the first argument that turns the kubevs binary into the supervisor.
const SuperviseCommand = "supervise"

// DefaultProxierLog receives the supervisor's and the proxier's output unless launch.logFile
// says otherwise. Not under /run: a crash-looping proxier must not fill a tmpfs. It is opened
// O_APPEND, so logrotate's copytruncate works on it.
const DefaultProxierLog = "/var/log/kubevs-proxier.log"

// LaunchLockName is the lock file, in the socket's directory, a supervisor holds while alive.
const LaunchLockName = "launch.lock"

// ErrLaunchBusy: another process holds the launch lock (a supervisor runs or is starting).
var ErrLaunchBusy = errors.New("a supervisor is already running or being launched")

// LaunchSupervisor starts `kubevs supervise <proxier> [--config=<configPath>]` detached, unless
// another process holds the launch lock, which is not an error. It does not wait for the
// proxier to answer.
func LaunchSupervisor(ctx context.Context, cfg *Config, cniPath string) error {
	err := launch(cfg, cniPath)
	if errors.Is(err, ErrLaunchBusy) {
		klog.FromContext(ctx).V(2).Info("Proxier launch already under way or supervised")
		return nil
	}
	if err == nil {
		klog.FromContext(ctx).Info("Launched the proxier supervisor", "proxier", cfg.Launch.ProxierBinary, "socket", cfg.Socket)
	}
	return err
}

func launch(cfg *Config, cniPath string) error {
	dir := filepath.Dir(cfg.Socket)
	if err := mkdirSocketDir(cfg.Socket); err != nil {
		return fmt.Errorf("create run directory %s: %w", dir, err)
	}
	lock, err := TryLock(filepath.Join(dir, LaunchLockName))
	if err != nil {
		return err
	}
	defer lock.Close() // the supervisor keeps its own copy of the lock
	proxier, err := FindBinary(cfg.Launch.ProxierBinary, cniPath)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the kubevs binary: %w", err)
	}
	logPath := cfg.Launch.LogFile
	if logPath == "" {
		logPath = DefaultProxierLog
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open proxier log %s: %w", logPath, err)
	}
	defer logFile.Close()
	args := []string{SuperviseCommand, proxier}
	if cfg.Launch.ConfigPath != "" {
		args = append(args, "--config="+cfg.Launch.ConfigPath)
	}
	cmd := exec.Command(self, args...)
	cmd.Dir = "/"
	cmd.Env = append(cleanEnv(), lockEnv+"="+strconv.Itoa(lockFD))
	cmd.Stdin = nil // /dev/null
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{lock} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := closeOnExecFrom(3); err != nil { // what the runtime left open stays here
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start supervisor %s: %w", self, err)
	}
	return cmd.Process.Release()
}

// TryLock opens path (0600, no symlink) and takes an exclusive flock without blocking;
// ErrLaunchBusy if someone holds it. Closing the file releases the lock.
func TryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrLaunchBusy)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// FindBinary resolves name: an absolute path as is, else the first executable of that name in
// the CNI_PATH directories, else beside the running binary.
func FindBinary(name, cniPath string) (string, error) {
	if filepath.IsAbs(name) {
		if isExecutable(name) {
			return name, nil
		}
		return "", fmt.Errorf("proxier binary %s: not an executable file", name)
	}
	dirs := filepath.SplitList(cniPath)
	if self, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("proxier binary %s: not found in CNI_PATH %q nor beside kubevs", name, cniPath)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// mkdirSocketDir creates the socket's directory root-only, as the proxier would.
func mkdirSocketDir(socket string) error { return os.MkdirAll(filepath.Dir(socket), 0o700) }
