package podsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

type netnsHandle = ns.NetNS

// writeStatus writes the status a kubelet reports for a running pod.
func (p *Pod) writeStatus(ctx context.Context, ready bool, started metav1.Time) error {
	pods := p.sim.client.CoreV1().Pods(p.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pods.Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
			s := corev1.ConditionTrue
			if !ok {
				s = corev1.ConditionFalse
			}
			for _, c := range cur.Status.Conditions {
				if c.Type == t && c.Status == s {
					return c // unchanged: keep its transition time
				}
			}
			return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now}
		}
		cur.Status.Phase = corev1.PodRunning
		cur.Status.HostIP = p.sim.nodeIPs[0]
		cur.Status.HostIPs = nil
		for _, ip := range p.sim.nodeIPs {
			cur.Status.HostIPs = append(cur.Status.HostIPs, corev1.HostIP{IP: ip})
		}
		cur.Status.PodIP = p.IP.String()
		cur.Status.PodIPs = nil
		for _, ip := range p.IPs() {
			cur.Status.PodIPs = append(cur.Status.PodIPs, corev1.PodIP{IP: ip.String()})
		}
		if cur.Status.StartTime == nil {
			cur.Status.StartTime = &started
		}
		cur.Status.Conditions = []corev1.PodCondition{
			cond(corev1.PodScheduled, true),
			cond(corev1.PodInitialized, true),
			cond(corev1.ContainersReady, ready),
			cond(corev1.PodReady, ready),
		}
		cur.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name:        "testserver",
			Image:       cur.Spec.Containers[0].Image,
			ImageID:     cur.Spec.Containers[0].Image,
			ContainerID: "bed://" + p.containerID,
			Ready:       ready,
			Started:     new(true),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		}}
		_, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// SetReady sets the pod's Ready condition (and ContainersReady), as a readiness probe would.
func (p *Pod) SetReady(ctx context.Context, ready bool) error {
	if err := p.writeStatus(ctx, ready, metav1.Now()); err != nil {
		return fmt.Errorf("set pod %s ready=%t: %w", p.Key(), ready, err)
	}
	return nil
}

// Terminate starts a graceful delete: the Pod gets a deletionTimestamp, so its endpoint turns
// terminating, while the pod keeps serving. Delete finishes the job.
func (p *Pod) Terminate(ctx context.Context) error {
	grace := p.spec.GracePeriod
	err := p.sim.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s gracefully: %w", p.Key(), err)
	}
	return nil
}

// Delete removes the pod as a kubelet does (see the package comment) and waits until the Pod
// object is gone. Calling it again returns the first call's result.
func (p *Pod) Delete(ctx context.Context) error {
	p.deleteOnce.Do(func() {
		if err := p.Terminate(ctx); err != nil {
			p.deleteErr = err
			return
		}
		p.deleteErr = p.teardown(ctx, false)
	})
	return p.deleteErr
}

// teardown stops the server, runs CNI DEL, removes the netns and force-deletes the Pod object.
// With quiet it skips marking the pod not ready first. Every step runs even if one fails.
func (p *Pod) teardown(ctx context.Context, quiet bool) error {
	var errs []error
	if p.server != nil {
		if err := p.server.Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
		if !quiet {
			if err := p.writeStatus(ctx, false, metav1.Now()); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("mark pod %s not ready: %w", p.Key(), err))
			}
		}
	}
	if p.rt != nil {
		n := p.sim.network
		if err := n.CNI.DelNetworkList(ctx, n.ConfList, p.rt); err != nil {
			errs = append(errs, fmt.Errorf("cni del %s for pod %s: %w", n.ConfList.Name, p.Key(), err))
		}
		lo := *p.rt
		lo.IfName = "lo"
		if err := n.CNI.DelNetwork(ctx, n.Loopback, &lo); err != nil {
			errs = append(errs, fmt.Errorf("cni del loopback for pod %s: %w", p.Key(), err))
		}
	}
	if p.NS != nil {
		if err := p.NS.Delete(); err != nil {
			errs = append(errs, err)
		}
	}
	pods := p.sim.client.CoreV1().Pods(p.Namespace)
	err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})
	if err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("force delete pod %s: %w", p.Key(), err))
	} else if err := p.waitGone(ctx); err != nil {
		errs = append(errs, err)
	}
	p.sim.mu.Lock()
	delete(p.sim.pods, p.Key())
	p.sim.mu.Unlock()
	return errors.Join(errs...)
}

func (p *Pod) waitGone(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, err := p.sim.client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for pod %s to be gone: %w (last: %w)", p.Key(), ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DialContext connects from inside the pod's network namespace. The socket belongs to the pod's
// namespace for its whole life, so the connection can be used from any goroutine.
func (p *Pod) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := p.NS.Do(func(netnsHandle) error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// HTTPClient returns a client whose connections start inside the pod. Each request uses a new
// connection, so successive requests to a Service may reach different backends.
func (p *Pod) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: p.DialContext, DisableKeepAlives: true},
	}
}

// Command returns a command that runs inside the pod's network namespace (nsenter), for tools
// such as curl.
func (p *Pod) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + p.NS.Path(), "--", name}, args...)...)
}
