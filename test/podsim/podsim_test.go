package podsim

import (
	"net"
	"testing"

	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestPodSpecDefaultsAndPorts(t *testing.T) {
	tests := []struct {
		name string
		in   PodSpec
		want []corev1.ContainerPort
	}{
		{
			name: "defaults",
			in:   PodSpec{Name: "a"},
			want: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
				{Name: "tcp-echo", ContainerPort: 9000, Protocol: corev1.ProtocolTCP},
				{Name: "udp-echo", ContainerPort: 9000, Protocol: corev1.ProtocolUDP},
			},
		},
		{
			name: "http only on another port",
			in:   PodSpec{Name: "b", HTTPPort: 80, TCPPort: -1, UDPPort: -1},
			want: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.in
			s.setDefaults()
			if diff := cmp.Diff(tc.want, s.containerPorts()); diff != "" {
				t.Errorf("container ports (-want +got):\n%s", diff)
			}
			if s.Namespace != "default" || s.GracePeriod != 30 {
				t.Errorf("namespace %q grace %d, want default and 30", s.Namespace, s.GracePeriod)
			}
		})
	}
}

func TestFamilyAddrs(t *testing.T) {
	addr := func(cidr string) *types100.IPConfig {
		ip, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return &types100.IPConfig{Address: *n}
	}
	tests := []struct {
		name     string
		ips      []*types100.IPConfig
		want4    string
		want6    string
		wantPods []string
	}{
		{name: "IPv4 only", ips: []*types100.IPConfig{addr("10.244.0.5/24")}, want4: "10.244.0.5", want6: "<nil>", wantPods: []string{"10.244.0.5"}},
		{
			name:  "dual-stack, IPv6 listed first by the plugin",
			ips:   []*types100.IPConfig{addr("fd00:244::5/64"), addr("10.244.0.5/24")},
			want4: "10.244.0.5", want6: "fd00:244::5", wantPods: []string{"10.244.0.5", "fd00:244::5"},
		},
		{
			name:  "first address of each family wins",
			ips:   []*types100.IPConfig{addr("10.244.0.5/24"), addr("fd00:244::5/64"), addr("10.244.0.6/24"), addr("fd00:244::6/64")},
			want4: "10.244.0.5", want6: "fd00:244::5", wantPods: []string{"10.244.0.5", "fd00:244::5"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v4, v6 := familyAddrs(&types100.Result{IPs: tc.ips})
			p := &Pod{IP: v4, IPv6: v6}
			var pods []string
			for _, ip := range p.IPs() {
				pods = append(pods, ip.String())
			}
			got := []any{v4.String(), v6.String(), pods}
			want := []any{tc.want4, tc.want6, tc.wantPods}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("IPv4, IPv6, podIPs (-want +got):\n%s", diff)
			}
		})
	}
}
