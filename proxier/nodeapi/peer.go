package nodeapi

// Who may call: the socket is 0600 in a 0700 root-owned directory, and on top of that every
// connection's peer credentials (SO_PEERCRED, taken by the kernel at connect time) are read
// once when the connection is accepted; a request on a connection whose peer is not uid 0
// is answered 403. The file modes are the first fence, this check the one that still holds
// when a mode is loosened by hand or the socket is passed into a container.

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"golang.org/x/sys/unix"
)

type peerKey struct{}

// peer is what the kernel says about the process at the other end of a connection.
type peer struct {
	uid, pid int
	err      error // the credentials could not be read
}

// withPeer is the http.Server's ConnContext: it records the connection's peer credentials.
// The credentials come from the accepting listener when it read them (callerConn).
func withPeer(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*callerConn); ok {
		return context.WithValue(ctx, peerKey{}, cc.peer)
	}
	return context.WithValue(ctx, peerKey{}, peerOf(c))
}

func peerOf(c net.Conn) peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{uid: -1, err: fmt.Errorf("not a unix socket connection (%T)", c)}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{uid: -1, err: err}
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peer{uid: -1, err: err}
	}
	if credErr != nil {
		return peer{uid: -1, err: fmt.Errorf("SO_PEERCRED: %w", credErr)}
	}
	return peer{uid: int(cred.Uid), pid: int(cred.Pid)}
}

// rootOnly answers 403 to a request whose connection's peer is not uid 0.
// A request without recorded credentials (the Handler used directly, as in tests) passes.
// Each refusal is reported to refused.
func rootOnly(h http.Handler, refused func(string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(peerKey{}).(peer)
		if ok {
			switch {
			case p.err != nil:
				refused(RefusedNotRoot)
				writeError(w, http.StatusForbidden, fmt.Errorf("node API: cannot identify the caller: %w", p.err))
				return
			case p.uid != 0:
				refused(RefusedNotRoot)
				writeError(w, http.StatusForbidden, fmt.Errorf("node API: caller uid %d (pid %d) refused: only root may call", p.uid, p.pid))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
