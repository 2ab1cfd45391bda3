package plugin

// What the supervisor and the proxier inherit. The plugin is run by the container runtime,
// so without care the proxier would inherit the runtime's environment (HTTP(S)_PROXY would
// send its API traffic through a proxy, GODEBUG would change its TLS and DNS behaviour, PATH
// picks the iptables binary and so the iptables backend, LD_* the libraries of those tools),
// the runtime's open descriptors, its rlimits, and its cgroup (so that a restart of the
// runtime's unit kills the proxier with it, and the runtime's limits count the proxier).
// Instead:
//
//   - the environment is a fixed allow-list: PATH set to ProxierPATH, nothing else;
//   - every descriptor above stderr is marked close-on-exec before the supervisor starts and
//     again in the supervisor (the launch lock alone is passed, on purpose, to the supervisor);
//   - the supervisor sets RLIMIT_NOFILE to NoFileLimit (soft and hard; without
//     CAP_SYS_RESOURCE the soft limit up to the hard one), which the proxier inherits;
//   - on cgroup v2, the supervisor moves itself into CgroupDir (created 0755), so it and the
//     proxier leave the runtime's cgroup; on cgroup v1, or when that fails, it logs and goes on.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// ProxierPATH is the only PATH the supervisor and the proxier see.
const ProxierPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// NoFileLimit is the supervisor's and the proxier's RLIMIT_NOFILE (soft and hard), the value
// container runtimes and kubelet units use.
const NoFileLimit = 1 << 20

// CgroupDir is the cgroup v2 directory the supervisor moves into.
const CgroupDir = "/sys/fs/cgroup/kubevs"

// cleanEnv is the whole environment of the supervisor and the proxier.
func cleanEnv() []string { return []string{"PATH=" + ProxierPATH} }

// closeOnExecFrom marks every open descriptor >= min close-on-exec, so an exec passes on
// only stdin, stdout, stderr and the ExtraFiles of an exec.Cmd.
func closeOnExecFrom(min int) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list open descriptors: %w", err)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= min {
			unix.CloseOnExec(fd) // the directory's own descriptor may be gone already: harmless
		}
	}
	return nil
}

// Confine prepares the supervisor process before it starts the proxier: descriptors, the
// NOFILE limit and the cgroup (see the note at the top of this file). Failures are logged,
// never fatal: the proxier is better run unconfined than not at all.
func Confine(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if err := closeOnExecFrom(3); err != nil {
		logger.Error(err, "Cannot mark inherited descriptors close-on-exec")
	}
	if n, err := raiseNoFile(); err != nil {
		logger.Error(err, "Cannot set the open files limit", "limit", NoFileLimit)
	} else if n < NoFileLimit {
		logger.Info("Open files limit capped by the hard limit (no CAP_SYS_RESOURCE)", "limit", n)
	}
	moved, err := joinCgroup(CgroupDir, os.Getpid())
	switch {
	case err != nil:
		logger.Error(err, "Cannot leave the container runtime's cgroup; running on in it", "cgroup", CgroupDir)
	case moved:
		logger.Info("Moved into our own cgroup", "cgroup", CgroupDir)
	default:
		logger.V(2).Info("No cgroup v2 hierarchy: staying in the current cgroup", "cgroup", CgroupDir)
	}
}

// raiseNoFile sets RLIMIT_NOFILE to NoFileLimit, or, where the hard limit may not be raised
// (no CAP_SYS_RESOURCE), the soft limit up to the hard one. It returns the soft limit set.
// syscall.Setrlimit, not unix's: the Go runtime then passes the value on to exec'd children
// instead of restoring the soft limit it found at start.
func raiseNoFile() (uint64, error) {
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: NoFileLimit, Max: NoFileLimit}); err == nil {
		return NoFileLimit, nil
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	lim.Cur = min(NoFileLimit, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("set RLIMIT_NOFILE to %d: %w", lim.Cur, err)
	}
	return lim.Cur, nil
}

// errNotCgroup2 says the parent of a cgroup directory is not a cgroup v2 mount.
var errNotCgroup2 = errors.New("not a cgroup v2 hierarchy")

// joinCgroup creates dir (0755) in the cgroup v2 hierarchy that holds its parent and moves
// pid into it. It reports false, nil when the parent is not cgroup v2.
func joinCgroup(dir string, pid int) (bool, error) {
	if err := isCgroup2(filepath.Dir(dir)); errors.Is(err, errNotCgroup2) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, moveInto(dir, pid)
}

func isCgroup2(path string) error {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return fmt.Errorf("statfs %s: %w", path, err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("%s: %w", path, errNotCgroup2)
	}
	return nil
}

// moveInto creates the cgroup directory dir if needed and writes pid to its cgroup.procs.
func moveInto(dir string, pid int) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	procs := filepath.Join(dir, "cgroup.procs")
	f, err := os.OpenFile(procs, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", procs, err)
	}
	_, werr := f.WriteString(strconv.Itoa(pid))
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("move pid %d into %s: %w", pid, procs, err)
	}
	return nil
}
