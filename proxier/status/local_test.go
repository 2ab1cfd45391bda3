package status

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/nodeapi"
)

func TestReadLocalPods(t *testing.T) {
	dir := t.TempDir()
	store, err := nodeapi.NewStore(dir)
	must(t, err)
	must(t, store.Register(nodeapi.Registration{ContainerID: "c1", IfName: "eth0", IPs: addrs("10.244.0.5", "fd00:244::5")}))
	must(t, store.Register(nodeapi.Registration{ContainerID: "c2", IfName: "eth0", IPs: addrs("10.244.0.6")}))
	for name, data := range map[string]string{
		".tmp-c3@eth0.json": `{"containerID":"c3","ifName":"eth0","ips":["10.244.0.7"]}`, // in flight
		"junk.json":         `{`,
		"notes.txt":         `{"ips":["10.244.0.8"]}`,
	} {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600))
	}
	got, err := ReadLocalPods(dir)
	must(t, err)
	want := desired.PodSet{}
	for _, a := range addrs("10.244.0.5", "fd00:244::5", "10.244.0.6") {
		want[a] = struct{}{}
	}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-c3@eth0.json")); err != nil {
		t.Errorf("the in-flight temporary file must be left alone: %v", err)
	}
	none, err := ReadLocalPods(filepath.Join(dir, "missing"))
	if err != nil || len(none) != 0 {
		t.Errorf("missing dir: %v, %v; want no pods and no error", none, err)
	}
}

// A registered pod whose endpoint carries no nodeName is local for internalTrafficPolicy
// Local, as in the proxier.
func TestListDesiredLocalPods(t *testing.T) {
	svc := service("default/local", "10.96.0.40", "TCP:80")
	svc.Spec.InternalTrafficPolicy = ptr(v1.ServiceInternalTrafficPolicyLocal)
	sl := slice(svc, "local-a", "10.244.0.5", "10.244.7.7")
	for i := range sl.Endpoints {
		sl.Endpoints[i].NodeName = nil
	}
	client := clientsetSource{fake.NewClientset(svc, sl, node("10.244.0.0/24"))}
	show := func(local desired.LocalPods) string {
		ws, err := ListDesired(context.Background(), client, testNode, config.New(), nil, local)
		must(t, err)
		var b strings.Builder
		for _, w := range ws {
			for _, vs := range w.State.VirtualServers {
				b.WriteString(vs.VirtualServer.String() + ":")
				for _, r := range vs.RealServers {
					b.WriteString(" " + r.AddrPort().String())
				}
				b.WriteString("\n")
			}
		}
		return b.String()
	}
	if got, want := show(nil), "TCP:10.96.0.40:80 rr:\n"; got != want {
		t.Errorf("no local pods: %q, want %q", got, want)
	}
	pods := desired.PodSet{netip.MustParseAddr("10.244.0.5"): {}}
	if got, want := show(pods), "TCP:10.96.0.40:80 rr: 10.244.0.5:8080\n"; got != want {
		t.Errorf("registered pod: %q, want %q", got, want)
	}
}
