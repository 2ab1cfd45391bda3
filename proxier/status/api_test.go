package status

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/desired"
)

func TestListDesired(t *testing.T) {
	web := service("default/web", "10.96.0.10", "TCP:80")
	other := service("default/other", "10.96.0.11", "TCP:80")
	headless := service("default/headless", v1.ClusterIPNone, "TCP:80")
	foreign := service("default/foreign", "10.96.0.12", "TCP:80")
	foreign.Labels = map[string]string{desired.ServiceProxyNameLabel: "someone-else"}
	extName := service("default/ext", "", "TCP:80")
	extName.Spec.Type, extName.Spec.ExternalName = v1.ServiceTypeExternalName, "example.com"
	dual := service("default/dual", "10.96.0.20", "UDP:53")
	dual.Spec.ClusterIPs = []string{"10.96.0.20", "fd00::20"}
	dual.Spec.Type = v1.ServiceTypeNodePort
	annotated := service("team/lc", "10.96.0.30", "TCP:80")
	annotated.Annotations = map[string]string{desired.SchedulerAnnotation: "lc"}
	bad := service("team/bad", "10.96.0.31", "TCP:80")
	bad.Annotations = map[string]string{desired.SchedulerAnnotation: "nope"}

	cluster := objects(web, other, headless, foreign, extName, dual, annotated, bad,
		slice(web, "web-a", "10.244.1.2"), slice(web, "web-b", "10.244.2.3"),
		slice(other, "other-a", "10.244.1.9"),
		slice(dual, "dual-4", "10.244.1.4"), slice(dual, "dual-6", "fd00:244::4"),
		slice(annotated, "lc-a", "10.244.3.3"))

	tests := []struct {
		name string
		objs []runtime.Object
		cfg  func(*config.Configuration)
		want string // name, type and the computed state of each Want
	}{
		{
			name: "IPv4 node from its pod CIDRs, default scheduler",
			objs: append(cluster, node("10.244.0.0/24")),
			want: `default/dual NodePort
vs UDP:10.96.0.20:53 rr
  rs 10.244.1.4:8053 weight 1
vip 10.96.0.20
set KUBE-CLUSTER-IP 10.96.0.20,udp:53
set KUBE-IPVS-IPS 10.96.0.20
skipped: service default/dual: cluster IP fd00::20: family inet6 not enabled on this node
default/other ClusterIP
vs TCP:10.96.0.11:80 rr
  rs 10.244.1.9:8080 weight 1
vip 10.96.0.11
set KUBE-CLUSTER-IP 10.96.0.11,tcp:80
set KUBE-IPVS-IPS 10.96.0.11
default/web ClusterIP
vs TCP:10.96.0.10:80 rr
  rs 10.244.1.2:8080 weight 1
  rs 10.244.2.3:8080 weight 1
vip 10.96.0.10
set KUBE-CLUSTER-IP 10.96.0.10,tcp:80
set KUBE-IPVS-IPS 10.96.0.10
team/bad ClusterIP
vs TCP:10.96.0.31:80 rr
vip 10.96.0.31
set KUBE-CLUSTER-IP 10.96.0.31,tcp:80
set KUBE-IPVS-IPS 10.96.0.31
skipped: service team/bad: annotation kubevs.io/scheduler: unknown scheduler "nope", using "rr"
team/lc ClusterIP
vs TCP:10.96.0.30:80 lc
  rs 10.244.3.3:8080 weight 1
vip 10.96.0.30
set KUBE-CLUSTER-IP 10.96.0.30,tcp:80
set KUBE-IPVS-IPS 10.96.0.30
`,
		},
		{
			name: "dual-stack cluster CIDRs and the configured scheduler; no Node object",
			objs: objects(dual, slice(dual, "dual-4", "10.244.1.4"), slice(dual, "dual-6", "fd00:244::4")),
			cfg: func(c *config.Configuration) {
				c.ClusterCIDRs = []string{"10.244.0.0/16", "fd00:244::/56"}
				c.Scheduler = "wlc"
			},
			want: `default/dual NodePort
vs UDP:10.96.0.20:53 wlc
  rs 10.244.1.4:8053 weight 1
vs UDP:[fd00::20]:53 wlc
  rs [fd00:244::4]:8053 weight 1
vip 10.96.0.20
vip fd00::20
set KUBE-6-CLUSTER-IP fd00::20,udp:53
set KUBE-6-IPVS-IPS fd00::20
set KUBE-CLUSTER-IP 10.96.0.20,udp:53
set KUBE-IPVS-IPS 10.96.0.20
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.objs...)
			cfg := config.New()
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			wants, err := ListDesired(context.Background(), clientsetSource{client}, testNode, cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, w := range wants {
				b.WriteString(w.Service.String() + " " + w.Type + "\n" + w.State.String())
				for _, s := range w.Skipped {
					b.WriteString("skipped: " + s + "\n")
				}
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("wants (-want +got):\n%s", diff)
			}
		})
	}
}

// TestListDesiredMatchesCompute checks that a Service split over several slices computes
// exactly as desired.ComputeService over those slices, as the proxier calls it.
func TestListDesiredMatchesCompute(t *testing.T) {
	web := service("default/web", "10.96.0.10", "TCP:80", "TCP:443")
	a, b := slice(web, "web-a", "10.244.1.2"), slice(web, "web-b", "10.244.2.3", "10.244.2.4")
	client := fake.NewClientset(web, b, a, node("10.244.0.0/24"))
	cfg := config.New()
	wants, err := ListDesired(context.Background(), clientsetSource{client}, testNode, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, errs := desired.ComputeService(derive.Options(cfg, node("10.244.0.0/24"), nil), derive.Node(testNode, node("10.244.0.0/24")), nil, desired.APIServiceOf(web), desired.SlicesOf(a, b))
	if len(errs) != 0 || len(wants) != 1 {
		t.Fatalf("errs %v, wants %d", errs, len(wants))
	}
	if diff := cmp.Diff(st.String(), wants[0].State.String()); diff != "" {
		t.Errorf("state (-compute +list):\n%s", diff)
	}
}

func TestListDesiredAPIError(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "services", func(action k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("boom")
	})
	_, err := ListDesired(context.Background(), clientsetSource{client}, testNode, config.New(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "list services: boom") {
		t.Errorf("err = %v, want list services: boom", err)
	}
}

// TestListDesiredGuardRails: status refuses what the proxier refuses, with the same inputs:
// an externalIP that is the API server's (from the default/kubernetes EndpointSlice) or
// another Service's ClusterIP is not wanted, so status reports no drift for it.
func TestListDesiredGuardRails(t *testing.T) {
	api := service("default/kubernetes", "10.96.0.1", "TCP:443")
	web := service("default/web", "10.96.0.10", "TCP:80")
	evil := service("default/evil", "10.96.0.66", "TCP:80")
	evil.Spec.ExternalIPs = []string{"192.168.5.5", "10.96.0.10", "198.51.100.7"}
	client := fake.NewClientset(api, slice(api, "kubernetes", "192.168.5.5"), web, evil, node("10.244.0.0/24"))
	wants, err := ListDesired(context.Background(), clientsetSource{client}, testNode, config.New(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range wants {
		if w.Service.Name != "evil" {
			continue
		}
		for _, vs := range w.State.VirtualServers {
			got = append(got, vs.Key.Address.String())
		}
		got = append(got, w.Skipped...)
	}
	want := []string{"10.96.0.66", "198.51.100.7",
		"service default/evil: external IP 192.168.5.5 refused: it is the API server's address",
		"service default/evil: external IP 10.96.0.10 refused: it is the ClusterIP of a Service"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("evil's virtual servers and skips (-want +got):\n%s", diff)
	}
}
