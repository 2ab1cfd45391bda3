package tracker

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/desired"
)

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func names(m map[types.NamespacedName]struct{}) []string {
	var out []string
	for n := range m {
		out = append(out, n.String())
	}
	sort.Strings(out)
	return out
}

func node(name string, labels map[string]string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func startTracker(t *testing.T, objs ...any) (*Tracker, *fake.Clientset, *atomic.Int32) {
	t.Helper()
	var rt []any
	rt = append(rt, objs...)
	client := fake.NewClientset()
	for _, o := range rt {
		var err error
		switch o := o.(type) {
		case *v1.Service:
			_, err = client.CoreV1().Services(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		case *v1.Node:
			_, err = client.CoreV1().Nodes().Create(context.Background(), o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var calls atomic.Int32
	tr := New(client, "node-a", func() { calls.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if tr.HasSynced() {
		t.Fatalf("HasSynced before Start")
	}
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "informers to sync", tr.HasSynced)
	return tr, client, &calls
}

func TestTrackerSeesServicesAndSlices(t *testing.T) {
	ctx := context.Background()
	tr, client, calls := startTracker(t, svc("a", "10.96.0.1", 80, nil), node("node-a", nil), node("node-b", nil))
	if diff := cmp.Diff([]string{"ns/a"}, names(tr.PendingChanges())); diff != "" {
		t.Errorf("initial changes (-want +got):\n%s", diff)
	}
	if n := tr.Node(); n == nil || n.Name != "node-a" {
		t.Fatalf("Node() = %v, want node-a", n)
	}
	ch := tr.Take()
	if !ch.Node || len(ch.Services) != 1 {
		t.Errorf("Take = %+v, want ns/a and the node", ch)
	}

	before := calls.Load()
	es := slice("a", "a-1", time.Now().Add(time.Second), "10.244.0.2")
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the slice", func() bool { _, s := tr.Service(nn("a")); return len(s) == 1 })
	if calls.Load() == before {
		t.Errorf("onChange not called for the slice")
	}
	ch = tr.Take()
	if diff := cmp.Diff([]string{"ns/a"}, names(ch.Services)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if len(ch.Triggers) != 1 || ch.Node {
		t.Errorf("Take = %+v, want one trigger time and no node change", ch)
	}
	got := tr.ServicesWithEndpoints(func(a netip.Addr) bool { return a == netip.MustParseAddr("10.244.0.2") })
	if diff := cmp.Diff([]types.NamespacedName{nn("a")}, got); diff != "" {
		t.Errorf("ServicesWithEndpoints (-want +got):\n%s", diff)
	}

	// Another node's update is not ours.
	if _, err := client.CoreV1().Nodes().Update(ctx, node("node-b", map[string]string{"x": "y"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Nodes().Update(ctx, node("node-a", map[string]string{"topology.kubernetes.io/zone": "z1"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node update", func() bool { return tr.Node().Labels["topology.kubernetes.io/zone"] == "z1" })
	if ch := tr.Take(); !ch.Node || len(ch.Services) != 0 {
		t.Errorf("Take = %+v, want only the node change", ch)
	}

	if err := client.CoreV1().Services("ns").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion", func() bool { s, _ := tr.Service(nn("a")); return s == nil })
	if diff := cmp.Diff([]string{"ns/a"}, names(tr.Take().Services)); diff != "" {
		t.Errorf("changes after delete (-want +got):\n%s", diff)
	}
}

func TestTrackerServiceProxyNameLabel(t *testing.T) {
	ctx := context.Background()
	tr, client, _ := startTracker(t, svc("a", "10.96.0.1", 80, nil), svc("b", "10.96.0.2", 80, map[string]string{desired.ServiceProxyNameLabel: "other"}))
	if diff := cmp.Diff([]string{"ns/a"}, names(tr.Take().Services)); diff != "" {
		t.Errorf("initial changes (-want +got):\n%s", diff)
	}
	// a gains the label: it disappears. b loses it: it appears.
	if _, err := client.CoreV1().Services("ns").Update(ctx, svc("a", "10.96.0.1", 80, map[string]string{desired.ServiceProxyNameLabel: "other"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services("ns").Update(ctx, svc("b", "10.96.0.2", 80, nil), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both changes", func() bool { return len(tr.PendingChanges()) == 2 })
	if diff := cmp.Diff([]string{"ns/a", "ns/b"}, names(tr.Take().Services)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestTrackerTouch(t *testing.T) {
	tr, _, calls := startTracker(t)
	before := calls.Load()
	tr.Touch(nn("x"))
	if calls.Load() == before {
		t.Errorf("Touch did not call onChange")
	}
	if diff := cmp.Diff([]string{"ns/x"}, names(tr.Take().Services)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestTrackerTombstonesAndMovedSlices(t *testing.T) {
	tr := New(fake.NewClientset(), "node-a", nil)
	logger := klog.Background()
	a := svc("a", "10.96.0.1", 80, nil)
	s := slice("a", "a-1", time.Time{}, "10.244.0.2")
	tr.onService(logger, nil, a)
	tr.onSlice(logger, nil, s)
	tr.Take()

	// The slice's service-name label moves it from a to b.
	moved := s.DeepCopy()
	moved.Labels[discoveryv1.LabelServiceName] = "b"
	tr.onSlice(logger, s, moved)
	if diff := cmp.Diff([]string{"ns/a", "ns/b"}, names(tr.Take().Services)); diff != "" {
		t.Errorf("changes after the move (-want +got):\n%s", diff)
	}
	if _, sl := tr.Service(nn("a")); len(sl) != 0 {
		t.Errorf("a still has %d slices", len(sl))
	}

	// Deletions the informer missed arrive as tombstones.
	tr.onService(logger, cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: a}, nil)
	tr.onSlice(logger, cache.DeletedFinalStateUnknown{Key: "ns/a-1", Obj: moved}, nil)
	if diff := cmp.Diff([]string{"ns/a", "ns/b"}, names(tr.Take().Services)); diff != "" {
		t.Errorf("changes after the tombstones (-want +got):\n%s", diff)
	}
	if got := tr.Services(); len(got) != 0 {
		t.Errorf("Services() = %v after every deletion, want none", got)
	}
}

// TestCompareNamesOrdersAsString: CompareNames gives the sign strings.Compare gives the
// names' String(), namespaces that are prefixes of others included.
func TestCompareNamesOrdersAsString(t *testing.T) {
	names := []types.NamespacedName{
		{Namespace: "a", Name: "x"}, {Namespace: "a", Name: "y"}, {Namespace: "a-b", Name: "x"},
		{Namespace: "ab", Name: "a"}, {Namespace: "a.b", Name: "z"}, {Namespace: "b", Name: ""},
		{Namespace: "", Name: "x"}, {Namespace: "a0", Name: "x"}, {Namespace: "default", Name: "web"},
	}
	for _, a := range names {
		for _, b := range names {
			want := strings.Compare(a.String(), b.String())
			if got := CompareNames(a, b); got != want {
				t.Errorf("CompareNames(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
}

// TestInformersKeepNoIndex: the Service and EndpointSlice informers list and watch with the
// label selectors, keep no index, and cache the objects transformed.
func TestInformersKeepNoIndex(t *testing.T) {
	client := fake.NewClientset(svc("a", "10.96.0.1", 80, nil), slice("a", "a-1", time.Time{}, "10.244.0.2"))
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(Transform))
	svcs, sls := serviceInformer(f), sliceInformer(f)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); f.Shutdown() }()
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), svcs.HasSynced, sls.HasSynced) {
		t.Fatal("informers not synced")
	}
	for what, inf := range map[string]cache.SharedIndexInformer{"Services": svcs, "EndpointSlices": sls} {
		if ix := inf.GetIndexer().GetIndexers(); len(ix) != 0 {
			t.Errorf("%s informer keeps indexes %v, want none", what, ix)
		}
		if len(inf.GetStore().List()) != 1 {
			t.Errorf("%s informer caches %d objects, want 1", what, len(inf.GetStore().List()))
		}
	}
	if _, ok := sls.GetStore().List()[0].(*cachedSlice); !ok {
		t.Errorf("EndpointSlice informer caches %T, want the transformed *cachedSlice", sls.GetStore().List()[0])
	}
	selectors := map[string]string{}
	for _, a := range client.Actions() {
		if l, ok := a.(k8stesting.ListAction); ok {
			selectors[a.GetResource().Resource] = l.GetListRestrictions().Labels.String()
		}
	}
	want := map[string]string{}
	for res, sel := range map[string]string{"services": serviceSelector, "endpointslices": sliceSelector} {
		parsed, err := labels.Parse(sel) // the form the action holds: requirements sorted
		if err != nil {
			t.Fatal(err)
		}
		want[res] = parsed.String()
	}
	if diff := cmp.Diff(want, selectors); diff != "" {
		t.Errorf("list label selectors (-want +got):\n%s", diff)
	}
}
