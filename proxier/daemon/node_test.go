package daemon

import (
	"context"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Without nodePortAddresses the NodePorts sit on the Node's addresses. A deleted Node, or
// one recreated without addresses yet, keeps them on the last known addresses through
// full syncs; a Node with a new address moves them.
func TestMissingNodeKeepsNodePorts(t *testing.T) {
	k := newFakeKernel()
	h := start(t, k, nodePortService("web", "10.96.0.10"), slice("web", "node-b", "10.244.2.5"))
	ctx := context.Background()
	nodes := h.client.CoreV1().Nodes()
	full := func() float64 { return gather(t, h.m)[`kubevs_sync_duration_seconds{mode="full"}`] }
	setAddress := func(n *v1.Node, addr string) {
		n.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: addr}}
	}
	n, err := nodes.Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setAddress(n, "192.168.1.10")
	if _, err := nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"TCP:10.96.0.10:80", "TCP:192.168.1.10:30080"}
	eventually(t, "the NodePort on the Node's address", func() bool { return slices.Equal(virtualServers(k), want) })

	// The Node is deleted: a full sync follows and the NodePort stays.
	before := full()
	if err := nodes.Delete(ctx, "node-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a full sync without the Node", func() bool { return h.d.tracker.Node() == nil && full() > before })
	if got := virtualServers(k); !slices.Equal(got, want) {
		t.Errorf("after the Node was deleted: virtual servers %q, want %q", got, want)
	}

	// Recreated without addresses (the kubelet has not updated its status yet): it stays.
	before = full()
	h.create(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"new": "yes"}}})
	eventually(t, "a full sync with the recreated Node", func() bool { return h.d.tracker.Node() != nil && full() > before })
	if got := virtualServers(k); !slices.Equal(got, want) {
		t.Errorf("after the Node was recreated without addresses: virtual servers %q, want %q", got, want)
	}

	// Its address arrives, a new one: the NodePort follows.
	n, err = nodes.Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setAddress(n, "192.168.1.20")
	if _, err := nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want = []string{"TCP:10.96.0.10:80", "TCP:192.168.1.20:30080"}
	eventually(t, "the NodePort on the new address", func() bool { return slices.Equal(virtualServers(k), want) })
}
