package nodeapi

// The ready mark. The CNI plugin's STATUS reports the node's pod network not ready until the
// proxier answers that it has synced once, so that no pod starts before its Services work.
// After that, a proxier that is merely slow to answer (a CPU-starved node, a long sync) must
// not turn the node NotReady: the kubelet would stop starting pods and the node would be
// tainted, where kube-proxy's node stays Ready. So the server writes "<socket>.ready" when its
// proxier is ready for the first time, holding the inode of the socket it listens on; a client
// whose request timed out asks WasReady, which holds only while that same socket is in place.
// A new server removes the mark before its socket appears (socket.go), so the mark of an
// earlier proxier never counts for a later one.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kubevs/kubevs/install/atomicfile"
)

func readyPath(socketPath string) string { return socketPath + ".ready" }

// MarkReady records that the proxier serving on s has been ready. Listen must have succeeded.
func (s *Server) MarkReady() error {
	if s.sock == nil {
		return fmt.Errorf("mark %s ready: not listening", s.socketPath)
	}
	data := strconv.FormatUint(s.sock.ino, 10) + "\n"
	if err := atomicfile.WriteFile(readyPath(s.socketPath), []byte(data), atomicfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("mark %s ready: %w", s.socketPath, err)
	}
	return nil
}

// WasReady reports whether the proxier listening on socketPath now has been ready once (its
// server called MarkReady). Any doubt (no mark, another socket, unreadable) is false.
func WasReady(socketPath string) bool {
	b, err := os.ReadFile(readyPath(socketPath))
	if err != nil || len(b) > 32 {
		return false
	}
	ino, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Lstat(socketPath, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return false
	}
	return st.Ino == ino
}

// TimedOut reports whether err is a request that something listening on the socket did not
// answer in time (as opposed to NotListening: nothing there at all).
func TimedOut(err error) bool {
	if NotListening(err) {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
