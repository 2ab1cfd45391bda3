package bed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// RestartAPIServer stops kube-apiserver as an operator's restart does (SIGTERM, then SIGKILL
// after 30 s), starts it again with the same binary and arguments, logging to the same file,
// and waits until /readyz answers. etcd keeps the cluster's state, so clients (the controller
// manager, the proxier's informers, the bed's own client) only see their connections break and
// must reconnect. Not safe to call concurrently with Close.
func (b *Bed) RestartAPIServer(ctx context.Context) error { return b.RestartAPIServerAfter(ctx, 0) }

// RestartAPIServerAfter is RestartAPIServer with kube-apiserver left stopped for down (an
// outage, as an etcd or control-plane upgrade makes) before it starts again.
func (b *Bed) RestartAPIServerAfter(ctx context.Context, down time.Duration) error {
	i := slices.IndexFunc(b.procs, func(p *Process) bool { return p.Name == "kube-apiserver" })
	if i < 0 {
		return errors.New("restart kube-apiserver: the bed runs none")
	}
	old := b.procs[i]
	if err := old.Stop(30 * time.Second); err != nil {
		return fmt.Errorf("restart kube-apiserver: stop: %w", err)
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("restart kube-apiserver: %w", ctx.Err())
	case <-time.After(down):
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b.pki.caPEM)
	secure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	// A kube-apiserver starved while it starts can exit (a post-start hook times out and is
	// fatal); the kubelet restarts its static pod, and so does the bed, a few times.
	var errs []error
	for try := 1; try <= apiServerStartTries; try++ {
		p, err := StartProcess(ctx, b.LogDir, old.Name, old.cmd.Path, old.cmd.Args[1:]...)
		if err != nil {
			return fmt.Errorf("restart kube-apiserver: %w", err)
		}
		b.procs[i] = p
		err = poll(ctx, "restarted kube-apiserver /readyz", b.cfg.StartTimeout, 250*time.Millisecond, p, func(ctx context.Context) error {
			return get(ctx, secure, APIServerURL+"/readyz", "ok", b.pki.Token)
		})
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("start %d: %w", try, err))
		if exited, _ := p.Exited(); !exited || ctx.Err() != nil {
			break // not ready in time, or cancelled: another start would not help
		}
	}
	return errors.Join(errs...)
}

// apiServerStartTries is how often RestartAPIServerAfter starts a kube-apiserver that exits
// before it is ready.
const apiServerStartTries = 3
