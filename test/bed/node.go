package bed

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// createNode registers the bed's Node the way a kubelet would: pod CIDRs in the spec (IPv4
// first), the node's addresses as InternalIPs (IPv4 first) and a Ready condition in the status.
// No node lifecycle controller runs, so the status stays as written.
func (b *Bed) createNode(ctx context.Context) error {
	cidrs := b.PodCIDRs()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   b.cfg.NodeName,
			Labels: map[string]string{corev1.LabelHostname: b.cfg.NodeName, corev1.LabelOSStable: "linux"},
		},
		Spec: corev1.NodeSpec{PodCIDR: cidrs[0], PodCIDRs: cidrs},
	}
	created, err := b.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", b.cfg.NodeName, err)
	}
	now := metav1.Now()
	host, _ := os.Hostname()
	var addrs []corev1.NodeAddress
	for _, ip := range b.NodeIPs() {
		addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip.String()})
	}
	created.Status = corev1.NodeStatus{
		Addresses: append(addrs, corev1.NodeAddress{Type: corev1.NodeHostName, Address: host}),
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "simulated by the kubevs test bed", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
	}
	updated, err := b.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update status of node %s: %w", b.cfg.NodeName, err)
	}
	b.Node = updated
	return nil
}
