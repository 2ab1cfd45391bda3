package nodeapi

// Who serves the node API socket when two proxiers run on one node: a launch-mode proxier
// (started by the CNI plugin's supervisor, `kubevs supervise`, when the conflist has
// launch.enabled) and a DaemonSet's. The DaemonSet's wins: it is the deployment the operator
// declared, upgrades and watches, while launch mode is the fallback of a node without one.
//
//   - The supervisor starts its proxier with SupervisedEnv=1 in its environment. Such a
//     server yields: POST /v1/yield makes it stop (the daemon exits with ExitYielded), and it
//     never takes the socket from a live server (it exits with ExitYielded at once). The
//     supervisor stops for good when its proxier exits with ExitYielded, instead of restarting
//     it into the DaemonSet's next restart window.
//   - Any other proxier (the DaemonSet's) that finds the socket locked asks the holder to
//     yield and takes the socket once the holder has let it go (ListenTakingOver). A holder
//     that does not yield (another DaemonSet proxier, during a rolling update with surge)
//     keeps the socket, and the newcomer fails as before.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// SupervisedEnv, set to "1" in a proxier's environment, says the plugin's supervisor started it.
const SupervisedEnv = "KUBEVS_SUPERVISED"

// ExitYielded is a supervised proxier's exit code when it left (or never took) the node API
// socket to another proxier; its supervisor then stops.
const ExitYielded = 3

// ErrServerRunning: another live server holds the socket's lock.
var ErrServerRunning = errors.New("another node API server is running")

// ErrNotYielding: the server holding the socket does not yield it (it was not started by a
// supervisor).
var ErrNotYielding = errors.New("the node API server does not yield")

// SetYield makes the server yield its socket when asked: fn is called once per request to
// POST /v1/yield and must start the server's shutdown. Without it the server answers 409.
func (s *Server) SetYield(fn func()) { s.yieldFn = fn }

func (s *Server) handleYield(w http.ResponseWriter, _ *http.Request) {
	if s.yieldFn == nil {
		writeError(w, http.StatusConflict, fmt.Errorf("%w: it was not started by a supervisor", ErrNotYielding))
		return
	}
	s.yieldFn()
	w.WriteHeader(http.StatusAccepted)
}

// Yield asks the server on the socket to leave it.
func (c *Client) Yield(ctx context.Context) error {
	err := c.do(ctx, http.MethodPost, "/v1/yield", nil, nil)
	if err != nil && errors.Is(err, errConflict) {
		return fmt.Errorf("%w: %w", ErrNotYielding, err)
	}
	return err
}

// ListenTakingOver is Listen; when another server holds the socket, it asks that server to
// yield and polls until the socket is free, for at most wait. It returns whether it took the
// socket over.
func (s *Server) ListenTakingOver(ctx context.Context, wait time.Duration) (bool, error) {
	err := s.Listen()
	if !errors.Is(err, ErrServerRunning) {
		return false, err
	}
	if yerr := NewClient(s.socketPath).Yield(ctx); yerr != nil {
		return false, fmt.Errorf("%w; asked it to yield: %w", err, yerr)
	}
	deadline := time.Now().Add(wait)
	for {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("take over %s: %w", s.socketPath, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		err = s.Listen()
		if !errors.Is(err, ErrServerRunning) {
			return err == nil, err
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("the server asked to yield still holds it after %s: %w", wait, err)
		}
	}
}
