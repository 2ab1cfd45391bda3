package status

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// The REST source asks for protobuf and lists from the watch cache (resourceVersion 0) on
// the first page, then follows the continue token alone, as the API server requires.
func TestSourceAsksForProtobufFromTheWatchCache(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		accept, _, _ := strings.Cut(r.Header.Get("Accept"), ",")
		mu.Lock()
		seen = append(seen, r.URL.Path+" rv="+q.Get("resourceVersion")+" continue="+q.Get("continue")+" accept="+accept)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json") // a server may answer JSON: the client takes it
		var body any
		switch {
		case strings.HasSuffix(r.URL.Path, "/nodes/"+testNode):
			body = node("10.244.0.0/24")
		case strings.HasSuffix(r.URL.Path, "/services") && q.Get("continue") == "":
			body = v1.ServiceList{ListMeta: metav1.ListMeta{Continue: "page2"}, Items: []v1.Service{*service("a/one", "10.96.0.1", "TCP:80")}}
		case strings.HasSuffix(r.URL.Path, "/services"):
			body = v1.ServiceList{Items: []v1.Service{*service("b/two", "10.96.0.2", "TCP:80")}}
		default:
			body = map[string]any{"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1", "items": []any{}}
		}
		_ = json.NewEncoder(w).Encode(body)
	}))
	defer srv.Close()
	src, err := NewSource(&rest.Config{Host: srv.URL})
	must(t, err)
	objs, err := listObjects(context.Background(), src, testNode)
	must(t, err)
	if objs.node == nil || len(objs.svcs) != 2 {
		t.Errorf("listed node %v and %d Services, want the node and 2", objs.node, len(objs.svcs))
	}
	const pb = "accept=application/vnd.kubernetes.protobuf"
	want := []string{
		"/api/v1/nodes/" + testNode + " rv= continue= " + pb,
		"/api/v1/services rv=0 continue= " + pb,
		"/api/v1/services rv= continue=page2 " + pb,
		"/apis/discovery.k8s.io/v1/endpointslices rv=0 continue= " + pb,
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, seen, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
