package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/reconcile"
	"github.com/kubevs/kubevs/proxier/sysctl"
	"github.com/kubevs/kubevs/proxier/sysctl/sysctltest"
)

func conntrackKernel() *sysctltest.Fake {
	return sysctltest.NewFake(map[string]string{
		"net/netfilter/nf_conntrack_max":                     "65536",
		"net/netfilter/nf_conntrack_tcp_timeout_established": "432000",
		"net/netfilter/nf_conntrack_tcp_timeout_close_wait":  "60",
		"net/netfilter/nf_conntrack_udp_timeout":             "30",
		"net/netfilter/nf_conntrack_udp_timeout_stream":      "120",
		"net/netfilter/nf_conntrack_tcp_be_liberal":          "0",
	})
}

func TestApplyConntrack(t *testing.T) {
	d := func(x time.Duration) metav1.Duration { return metav1.Duration{Duration: x} }
	for _, tc := range []struct {
		name string
		c    config.ConntrackConfiguration
		ncpu int
		want []string
	}{
		{"unset: nothing written", config.ConntrackConfiguration{}, 4, nil},
		{
			// kube-proxy's defaults on 2 CPUs: max is the floor (131072 > 2 x 32768); the
			// established timeout is already higher (5 days) and stays.
			"kube-proxy defaults, 2 CPUs", config.ConntrackConfiguration{
				MaxPerCore: ptr[int32](32768), Min: ptr[int32](131072),
				TCPEstablishedTimeout: d(24 * time.Hour), TCPCloseWaitTimeout: d(time.Hour),
			}, 2,
			[]string{"set net/netfilter/nf_conntrack_max 131072", "set net/netfilter/nf_conntrack_tcp_timeout_close_wait 3600"},
		},
		{"max per core above the floor", config.ConntrackConfiguration{MaxPerCore: ptr[int32](32768), Min: ptr[int32](1024)}, 8,
			[]string{"set net/netfilter/nf_conntrack_max 262144"}},
		{"maxPerCore 0 leaves the limit, min ignored", config.ConntrackConfiguration{MaxPerCore: ptr[int32](0), Min: ptr[int32](1 << 20)}, 8, nil},
		{"never lowered", config.ConntrackConfiguration{MaxPerCore: ptr[int32](1000), Min: ptr[int32](0), UDPTimeout: d(10 * time.Second)}, 2, nil},
		{"udp and be-liberal", config.ConntrackConfiguration{UDPTimeout: d(time.Minute), UDPStreamTimeout: d(3 * time.Minute), TCPBeLiberal: true}, 2,
			[]string{"set net/netfilter/nf_conntrack_udp_timeout 60", "set net/netfilter/nf_conntrack_udp_timeout_stream 180", "set net/netfilter/nf_conntrack_tcp_be_liberal 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := conntrackKernel()
			if err := applyConntrack(k, tc.c, tc.ncpu); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, k.Ops()); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyConntrackGoesOnPastAMissingParameter(t *testing.T) {
	// nf_conntrack not loaded: the timeouts are unknown; the error names the parameter.
	k := sysctltest.NewFake(map[string]string{"net/netfilter/nf_conntrack_tcp_be_liberal": "0"})
	c := config.ConntrackConfiguration{MaxPerCore: ptr[int32](65536), TCPBeLiberal: true}
	err := applyConntrack(k, c, 2)
	if err == nil || !strings.Contains(err.Error(), "nf_conntrack_max") {
		t.Fatalf("error %v, want one naming nf_conntrack_max", err)
	}
	if diff := cmp.Diff([]string{"set net/netfilter/nf_conntrack_tcp_be_liberal 1"}, k.Ops()); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
}

// applyConntrack writes c's parameters as Start does (reconcile.RaiseSysctls).
func applyConntrack(k sysctl.Interface, c config.ConntrackConfiguration, ncpu int) error {
	return reconcile.RaiseSysctls(k, conntrackSysctls(c, ncpu))
}
