package daemon

// The node API socket between a launch-mode proxier and a DaemonSet's (the rules are in
// proxier/nodeapi/handover.go): the DaemonSet's wins.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// ErrYielded: this supervised proxier left the node API socket to another proxier, or found
// it held by one; kubevs-proxier exits with nodeapi.ExitYielded.
var ErrYielded = errors.New("another kubevs-proxier serves this node's API socket; a proxier started by the CNI plugin's supervisor yields it")

// takeOverWait bounds how long a proxier waits for a yielding one to let the socket go: the
// yielding proxier's shutdown (its servers, 5 s for the node API's requests in flight).
const takeOverWait = 30 * time.Second

// listenNodeAPI opens the node API socket. A supervised proxier yields it on request and
// never takes it from a live server; any other takes it over from a supervised one.
func (d *Daemon) listenNodeAPI(ctx context.Context, srv *nodeapi.Server) error {
	logger := klog.FromContext(ctx)
	if d.supervised {
		srv.SetYield(func() {
			logger.Info("Asked to yield the node API socket to another kubevs-proxier (a DaemonSet's?); stopping")
			d.yielded.Store(true)
			if d.stop != nil {
				d.stop()
			}
		})
		err := srv.Listen()
		if errors.Is(err, nodeapi.ErrServerRunning) {
			d.yielded.Store(true)
			return fmt.Errorf("%w: %w", ErrYielded, err)
		}
		return err
	}
	took, err := srv.ListenTakingOver(ctx, takeOverWait)
	if took {
		logger.Info("Took the node API socket over from a kubevs-proxier started by the CNI plugin's supervisor")
	}
	return err
}
