package bed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/klog/v2"
)

// apiServerStarts is how many times the bed starts kube-apiserver before it gives up on it
// becoming ready.
const apiServerStarts = 3

// startUntilReady starts name (bin with args) and polls ready as poll does; when the process
// exits before it is ready, it is started again, up to starts times in all. It is for
// components that exit by design on a startup step that ran out of time: kube-apiserver
// exits when a post-start hook fails, and in a guest starved of CPU (host load ~30) its
// initial Service IP and port allocation check did ("PostStartHook
// start-service-ip-repair-controllers failed"), which failed a whole e2e run in the bed.
// etcd holds the cluster's state, so a new start finds it as the first left it. A process
// that is running but not ready at the deadline is not started again. The log file is
// appended to, so every start's output is kept.
func (b *Bed) startUntilReady(ctx context.Context, starts int, name, bin string, args []string, ready func(context.Context) error) (*Process, error) {
	p, err := b.start(ctx, name, bin, args...)
	if err != nil {
		return nil, err
	}
	for n := 1; ; n++ {
		err := poll(ctx, name+" ready", b.cfg.StartTimeout, 250*time.Millisecond, p, ready)
		exited, _ := p.Exited()
		if err == nil || !exited || n >= starts || ctx.Err() != nil {
			return p, err
		}
		klog.FromContext(ctx).Info("A component exited before it was ready; starting it again", "component", name, "start", n, "of", starts, "err", err)
		np, serr := StartProcess(ctx, b.LogDir, name, bin, args...)
		if serr != nil {
			return p, errors.Join(err, fmt.Errorf("start %s again: %w", name, serr))
		}
		if i := slices.Index(b.procs, p); i >= 0 {
			b.procs[i] = np
		}
		p = np
	}
}
