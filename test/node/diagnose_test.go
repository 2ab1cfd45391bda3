//go:build nodee2e

package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubevs/kubevs/test/bed"
)

// diagnoseOnFailure registers a cleanup that, if the test failed, prints what tells a stuck
// node apart: the Node's taints and conditions; every pod with its node (bound or not) and
// its conditions' messages (the scheduler's reason for an unbound one); the ReplicaSets; the
// recent Events; a goroutine dump of the kubelet (SIGQUIT: the Go runtime writes every
// goroutine to its stderr, which is kubelet.log, and exits); and the tails of the kubelet's,
// the scheduler's, the controller manager's and the kubevs containers' logs. Register it after
// the kubelet started, so that it runs before the kubelet's own cleanup stops it.
func diagnoseOnFailure(t *testing.T, c kubernetes.Interface, logDir string, kubelet *bed.Process) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var b strings.Builder
		describeCluster(ctx, &b, c)
		if p := kubelet; p != nil {
			if exited, _ := p.Exited(); !exited {
				fmt.Fprintf(&b, "kubelet (pid %d) alive; SIGQUIT for a goroutine dump into %s\n", p.PID(), p.LogPath)
				_ = syscall.Kill(p.PID(), syscall.SIGQUIT)
				deadline := time.Now().Add(90 * time.Second)
				for exited, _ := p.Exited(); !exited && time.Now().Before(deadline); exited, _ = p.Exited() {
					time.Sleep(200 * time.Millisecond)
				}
				dumpGoroutineSummary(&b, p.LogPath)
			} else {
				fmt.Fprintf(&b, "kubelet had exited: %s\n", p.Tail(4096))
			}
		}
		for _, name := range []string{"kubelet", "kube-scheduler", "kube-controller-manager", "containerd"} {
			path := filepath.Join(logDir, name+".log")
			fmt.Fprintf(&b, "--- tail of %s\n%s\n", path, tail(path, 6<<10))
		}
		logs, _ := filepath.Glob("/var/log/pods/kubevs-system_*/*/*.log")
		for _, path := range logs {
			fmt.Fprintf(&b, "--- tail of %s\n%s\n", path, tail(path, 4<<10))
		}
		t.Logf("diagnosis of the failed node:\n%s", b.String())
	})
}

// describeCluster writes the node, the pods, the ReplicaSets and the recent Events.
func describeCluster(ctx context.Context, b *strings.Builder, c kubernetes.Interface) {
	if nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(b, "nodes: %v\n", err)
	} else {
		for _, n := range nodes.Items {
			fmt.Fprintf(b, "node %s: taints %v, unschedulable %v, podCIDRs %v\n", n.Name, n.Spec.Taints, n.Spec.Unschedulable, n.Spec.PodCIDRs)
			for _, cond := range n.Status.Conditions {
				fmt.Fprintf(b, "  %s=%s %s: %s (heartbeat %s)\n", cond.Type, cond.Status, cond.Reason, cond.Message, cond.LastHeartbeatTime.Format(time.TimeOnly))
			}
		}
	}
	if pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(b, "pods: %v\n", err)
	} else {
		for i := range pods.Items {
			p := &pods.Items[i]
			node := p.Spec.NodeName
			if node == "" {
				node = "(unbound)"
			}
			fmt.Fprintf(b, "pod %s/%s on %s: %s\n", p.Namespace, p.Name, node, podState(p))
			for _, cond := range p.Status.Conditions {
				fmt.Fprintf(b, "  %s=%s %s %s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
			}
		}
	}
	if rss, err := c.AppsV1().ReplicaSets("").List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(b, "replicasets: %v\n", err)
	} else {
		for _, rs := range rss.Items {
			fmt.Fprintf(b, "replicaset %s/%s: %d of %d replicas, %d ready\n", rs.Namespace, rs.Name, rs.Status.Replicas, ptrOr(rs.Spec.Replicas), rs.Status.ReadyReplicas)
		}
	}
	if evs, err := c.CoreV1().Events("").List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(b, "events: %v\n", err)
	} else {
		items := evs.Items
		sort.Slice(items, func(i, j int) bool { return eventTime(&items[i]).Before(eventTime(&items[j])) })
		if len(items) > 40 {
			items = items[len(items)-40:]
		}
		for i := range items {
			e := &items[i]
			fmt.Fprintf(b, "event %s %s %s/%s %s: %s\n", eventTime(e).Format(time.TimeOnly), e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
}

func eventTime(e *corev1.Event) time.Time {
	if !e.LastTimestamp.IsZero() {
		return e.LastTimestamp.Time
	}
	return e.EventTime.Time
}

func ptrOr(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// dumpGoroutineSummary writes the goroutine count of the dump at the end of log and where the
// kubelet's sync loop stood.
func dumpGoroutineSummary(b *strings.Builder, log string) {
	data, err := os.ReadFile(log)
	if err != nil {
		fmt.Fprintf(b, "read %s: %v\n", log, err)
		return
	}
	s := string(data)
	i := strings.LastIndex(s, "SIGQUIT")
	if i < 0 {
		fmt.Fprintf(b, "no goroutine dump in %s\n", log)
		return
	}
	dump := s[i:]
	fmt.Fprintf(b, "kubelet goroutine dump: %d goroutines, %d bytes (in %s)\n", strings.Count(dump, "\ngoroutine "), len(dump), log)
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.Contains(g, "syncLoop") {
			fmt.Fprintf(b, "%.3000s\n", g)
		}
	}
}

// tail returns the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := st.Size() - n
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return err.Error()
	}
	return string(buf)
}
