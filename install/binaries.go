package install

// The CNI bin directory is where the runtime executes plugins as root. Anyone who can write a
// file there, or replace the directory, runs code as root on every pod start. So the installer
// refuses a bin directory (or a parent below Root) that is not owned by root or that group or
// others may write, and writes each binary owned by root:root, mode 0755, under a temporary
// name in the same directory, fsync'd, then renamed into place: the runtime sees the old
// binary or the new one, never a half-written one, and a running process keeps its old inode.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kubevs/kubevs/install/atomicfile"
)

// checkDirSafe refuses dir unless it and its parents up to (not including) root are root-owned
// directories that only their owner can write.
//
// What that inspects on the host: run on the node (--root=/), the host's bin dir and every
// parent. In the DaemonSet (--root=/host), dir is the hostPath mount of the host's
// /opt/cni/bin, and a bind mount's stat is the host directory's own inode: the check sees the
// host's owner and mode of the bin dir itself. Its parents there (/host/opt/cni, /host/opt)
// are the container's directories, not the host's /opt/cni and /opt, which the DaemonSet does
// not mount and so does not check.
func checkDirSafe(root, dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		if d == root || d == filepath.Dir(d) || len(d) < len(root) {
			return nil
		}
		st, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("check %s: %w", d, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("check %s: not a directory (symlinks are refused too)", d)
		}
		if st.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("%s is group- or world-writable (mode %v): anyone who can write it runs code as root; fix the mode or pass --allow-insecure-bin-dir", d, st.Mode().Perm())
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
			return fmt.Errorf("%s is owned by uid %d, not root: its owner could replace plugins run as root; fix the owner or pass --allow-insecure-bin-dir", d, sys.Uid)
		}
	}
}

// fileSum returns the SHA-256 of the file at path.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// installBinary copies src to dst atomically (root:root 0755) unless dst already holds the
// same content with that mode and owner. It returns the content's SHA-256.
func installBinary(src, dst string) (sum string, changed bool, err error) {
	sum, err = fileSum(src)
	if err != nil {
		return "", false, fmt.Errorf("read binary %s: %w", src, err)
	}
	if cur, err := fileSum(dst); err == nil && cur == sum && binaryModeOK(dst) {
		return sum, false, nil
	}
	f, err := os.Open(src)
	if err != nil {
		return "", false, fmt.Errorf("open binary %s: %w", src, err)
	}
	defer f.Close()
	if err := atomicfile.Write(dst, f, atomicfile.Options{Mode: 0o755, Chown: true, UID: 0, GID: 0}); err != nil {
		return "", false, fmt.Errorf("install binary %s: %w", filepath.Base(dst), err)
	}
	return sum, true, nil
}

func binaryModeOK(path string) bool {
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o755 || !st.Mode().IsRegular() {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Uid == 0 && sys.Gid == 0
}

// fileID identifies a file's content cheaply: replaced or rewritten, one of these changes.
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
	mode     os.FileMode
	uid, gid uint32
}

func statID(path string) (fileID, bool) {
	st, err := os.Lstat(path)
	if err != nil {
		return fileID{}, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(sys.Dev), ino: sys.Ino, size: st.Size(), mtime: st.ModTime().UnixNano(), mode: st.Mode(), uid: sys.Uid, gid: sys.Gid}, true
}
