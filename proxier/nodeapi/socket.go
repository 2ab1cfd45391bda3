package nodeapi

// How the socket is created, so that no one but root ever reaches it and two proxiers never
// fight over it:
//
//   - its directory is created 0700 and must be a real directory, not a symlink, owned by
//     root; an existing one that is group or world writable (anyone could have swapped the
//     socket or its lock) is refused, one that is merely readable is chmod'ed back to 0700;
//   - an exclusive flock on "<socket>.lock" is held while serving: a second server fails fast
//     instead of stealing the socket of a live one;
//   - an existing path is removed only if it is a socket nothing answers on (a stale one left
//     by a crash); a symlink or any other file is an error;
//   - the listener is bound to a temporary name, chmod'ed 0600, and only then renamed onto the
//     final path, so the final path never exists with a wider mode (no process-wide umask);
//   - an earlier server's ready mark (ready.go) is removed before the socket appears.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxSocketPath is the size of sockaddr_un.sun_path on Linux, including the trailing NUL.
const maxSocketPath = 108

type socket struct {
	path string
	ln   *net.UnixListener
	lock *os.File
	ino  uint64
}

func listenSocket(path string) (*socket, error) {
	if len(path) >= maxSocketPath {
		return nil, fmt.Errorf("socket path %s: longer than %d bytes", path, maxSocketPath-1)
	}
	dir := filepath.Dir(path)
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = lock.Close()
		}
	}()
	if err := removeStale(path); err != nil {
		return nil, err
	}
	// An earlier server's ready mark goes before this socket appears (ready.go).
	if err := os.Remove(readyPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove the ready mark of an earlier server: %w", err)
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".s%d.tmp", os.Getpid())) // short: sun_path is 108 bytes
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", tmp, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*socket, error) {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, socketMode); err != nil {
		return fail(fmt.Errorf("chmod socket %s: %w", tmp, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("rename socket %s to %s: %w", tmp, path, err))
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail(fmt.Errorf("stat socket %s: %w", path, err))
	}
	ok = true
	return &socket{path: path, ln: ln, lock: lock, ino: st.Ino}, nil
}

// close stops listening, removes the socket if it is still ours, and releases the lock.
func (s *socket) close() {
	_ = s.ln.Close()
	var st unix.Stat_t
	if err := unix.Lstat(s.path, &st); err == nil && st.Ino == s.ino {
		_ = os.Remove(s.path)
	}
	_ = s.lock.Close()
}

func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create socket directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("stat socket directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s: not a directory (a symlink?)", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("socket directory %s: no owner information", dir)
	}
	if st.Uid != 0 {
		return fmt.Errorf("socket directory %s: owned by uid %d, not root: refusing to serve in it", dir, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("socket directory %s: mode %04o is group or world writable: refusing to serve in it", dir, fi.Mode().Perm())
	}
	if fi.Mode().Perm() != dirMode {
		if err := os.Chmod(dir, dirMode); err != nil {
			return fmt.Errorf("chmod socket directory %s: %w", dir, err)
		}
	}
	return nil
}

func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open socket lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrServerRunning)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// ErrSocketInUse is returned when something already answers on the socket path.
var ErrSocketInUse = errors.New("socket in use")

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat socket %s: %w", path, err)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("socket path %s is a symlink: refusing it", path)
	case fi.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("socket path %s exists and is not a socket: refusing to remove it", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return fmt.Errorf("socket %s: %w", path, ErrSocketInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}
